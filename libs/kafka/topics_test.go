package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/costplane/costplane/libs/kafka"
)

func TestEnsureTopics(t *testing.T) {
	forEachCluster(t, func(t *testing.T, brokers []string) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cl := newClient(t, brokers)
		adm := kadm.NewClient(cl)

		existing := unique("test.existing")
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, existing); err != nil {
			t.Fatalf("creating the pre-existing topic: %v", err)
		}
		fresh := unique("test.fresh")
		specs := []kafka.TopicSpec{
			{Name: existing, Partitions: 4, ReplicationFactor: 1},
			{
				Name: fresh, Partitions: 3, ReplicationFactor: 1,
				Configs: map[string]string{"retention.ms": "3600000"},
			},
		}

		// Twice: the second call finds both topics and must succeed.
		for i := range 2 {
			if err := kafka.EnsureTopics(ctx, cl, specs...); err != nil {
				t.Fatalf("EnsureTopics call %d: %v", i+1, err)
			}
		}

		got := partitionCounts(ctx, t, adm, existing, fresh)
		want := map[string]int{existing: 1, fresh: 3}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("partitions per topic (-want +got):\n%s", diff)
		}

		rc, err := adm.DescribeTopicConfigs(ctx, fresh)
		if err != nil {
			t.Fatalf("describing configs: %v", err)
		}
		v, err := rc.On(fresh, nil)
		if err != nil {
			t.Fatalf("describing configs: %v", err)
		}
		if got := configValue(v, "retention.ms"); got != "3600000" {
			t.Errorf("retention.ms = %q, want 3600000", got)
		}
	})
}

func TestCreateTopicsUsesConfigDefaults(t *testing.T) {
	forEachCluster(t, func(t *testing.T, brokers []string) {
		cfg := kafka.DefaultConfig()
		cfg.Brokers = brokers
		cfg.TopicPartitions = 2
		name := unique("test.create")
		if err := kafka.CreateTopics(context.Background(), cfg, name); err != nil {
			t.Fatalf("CreateTopics: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		got := partitionCounts(ctx, t, kadm.NewClient(newClient(t, brokers)), name)
		if diff := cmp.Diff(map[string]int{name: 2}, got); diff != "" {
			t.Errorf("partitions (-want +got):\n%s", diff)
		}
	})
}

func TestEnsureTopicsRejectsBadName(t *testing.T) {
	cl := newClient(t, fakeCluster(t))
	spec := kafka.TopicSpec{Name: "bad name", Partitions: 1, ReplicationFactor: 1}
	if err := kafka.EnsureTopics(context.Background(), cl, spec); err == nil {
		t.Errorf("EnsureTopics(%q) = nil, want an error", spec.Name)
	}
}

func partitionCounts(
	ctx context.Context, t *testing.T, adm *kadm.Client, topics ...string,
) map[string]int {
	t.Helper()
	meta, err := adm.Metadata(ctx, topics...)
	if err != nil {
		t.Fatalf("reading metadata: %v", err)
	}
	got := make(map[string]int)
	for _, name := range topics {
		got[name] = len(meta.Topics[name].Partitions)
	}
	return got
}

func configValue(rc kadm.ResourceConfig, key string) string {
	for _, c := range rc.Configs {
		if c.Key == key {
			return c.MaybeValue()
		}
	}
	return ""
}
