package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicSpec describes a topic to create when it is missing.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	// Configs are topic-level settings such as retention.ms.
	Configs map[string]string
}

// TopicSpecs returns the specs of every DESIGN §4 topic with cfg's
// partition count, replication factor and retention.
func (c Config) TopicSpecs() []TopicSpec {
	specs := make([]TopicSpec, 0, 7)
	for _, name := range c.Topics.all() {
		specs = append(specs, c.TopicSpec(name))
	}
	return specs
}

// TopicSpec returns the spec of one topic with cfg's settings.
func (c Config) TopicSpec(name string) TopicSpec {
	spec := TopicSpec{
		Name:              name,
		Partitions:        c.TopicPartitions,
		ReplicationFactor: c.ReplicationFactor,
	}
	if c.TopicRetention > 0 {
		ms := strconv.FormatInt(c.TopicRetention.Milliseconds(), 10)
		spec.Configs = map[string]string{"retention.ms": ms}
	}
	return spec
}

// CreateTopics is EnsureTopics for a process that has no client yet: it
// connects with cfg, ensures the named topics with cfg's partitions and
// retention within a minute, and disconnects.
func CreateTopics(ctx context.Context, cfg Config, names ...string) error {
	cl, err := NewClient(cfg)
	if err != nil {
		return err
	}
	defer cl.Close()

	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	specs := make([]TopicSpec, len(names))
	for i, n := range names {
		specs[i] = cfg.TopicSpec(n)
	}
	return EnsureTopics(ctx, cl, specs...)
}

// EnsureTopics creates the topics of specs that do not exist and waits
// until every partition of every spec has a leader, so that the caller can
// produce as soon as it returns. Existing topics are not altered, and a
// topic created concurrently by another process counts as created.
func EnsureTopics(ctx context.Context, cl *kgo.Client, specs ...TopicSpec) error {
	names := make([]string, 0, len(specs))
	for _, s := range specs {
		if err := validateTopicName(s.Name); err != nil {
			return fmt.Errorf("ensuring topics: %w", err)
		}
		names = append(names, s.Name)
	}

	state, err := topicStates(ctx, cl, names)
	if err != nil {
		return fmt.Errorf("ensuring topics: %w", err)
	}
	adm := kadm.NewClient(cl)
	for _, s := range specs {
		if state[s.Name] == topicMissing {
			if err := createTopic(ctx, adm, s); err != nil {
				return fmt.Errorf("ensuring topics: %w", err)
			}
		}
	}

	if err := waitForLeaders(ctx, cl, names); err != nil {
		return fmt.Errorf("ensuring topics: %w", err)
	}

	return nil
}

func createTopic(ctx context.Context, adm *kadm.Client, s TopicSpec) error {
	configs := make(map[string]*string, len(s.Configs))
	for k, v := range s.Configs {
		configs[k] = kadm.StringPtr(v)
	}

	_, err := adm.CreateTopic(ctx, s.Partitions, s.ReplicationFactor, configs, s.Name)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating topic %s: %w", s.Name, err)
	}

	return nil
}

// waitForLeaders polls metadata until every partition of names reports a
// leader. A real broker answers CreateTopics before the controller has
// elected leaders, and a produce in that window fails.
func waitForLeaders(ctx context.Context, cl *kgo.Client, names []string) error {
	bo := backoff{min: 20 * time.Millisecond, max: time.Second}
	for {
		state, err := topicStates(ctx, cl, names)
		if err == nil {
			err = notReady(state, names)
		}
		if err == nil {
			return nil
		}

		if werr := bo.wait(ctx); werr != nil {
			return fmt.Errorf("waiting for partition leaders: %w (last: %w)", werr, err)
		}
	}
}

func notReady(state map[string]topicState, names []string) error {
	for _, name := range names {
		if state[name] != topicReady {
			return fmt.Errorf("topic %s has partitions without a leader", name)
		}
	}
	return nil
}

type topicState int

const (
	topicMissing topicState = iota
	topicLeaderless
	topicReady
)

// topicStates asks a broker directly: kadm's Metadata answers from the
// client's cache for up to five seconds, which would hide a new topic.
func topicStates(
	ctx context.Context, cl *kgo.Client, names []string,
) (map[string]topicState, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, name := range names {
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, t)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("reading metadata: %w", err)
	}

	state := make(map[string]topicState, len(names))
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		st, err := stateOf(t)
		if err != nil {
			return nil, fmt.Errorf("topic %s: %w", *t.Topic, err)
		}
		state[*t.Topic] = st
	}

	return state, nil
}

// stateOf fails only on errors that waiting cannot cure, such as a
// missing permission.
func stateOf(t kmsg.MetadataResponseTopic) (topicState, error) {
	if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
		switch {
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			return topicMissing, nil
		case kerr.IsRetriable(err):
			return topicLeaderless, nil
		}
		return topicMissing, err
	}
	if len(t.Partitions) == 0 {
		return topicLeaderless, nil
	}
	for _, p := range t.Partitions {
		if p.ErrorCode != 0 || p.Leader < 0 {
			return topicLeaderless, nil
		}
	}
	return topicReady, nil
}
