// Package devkafka runs franz-go's in-process Kafka-protocol broker for the
// embedded development stack.
package devkafka

import (
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is an in-process Kafka-protocol broker that keeps its log in a
// directory, so a restart of the stack resumes where PostgreSQL's stored
// offsets expect it to.
type Broker struct {
	cluster *kfake.Cluster
}

// Start listens on port (0 picks one) and persists to dir.
func Start(port int, dir string) (*Broker, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating broker dir: %w", err)
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DataDir(dir),
		kfake.DefaultNumPartitions(6),
	)
	if err != nil {
		return nil, fmt.Errorf("starting embedded kafka: %w", err)
	}
	return &Broker{cluster: c}, nil
}

// Addrs are the broker's listen addresses.
func (b *Broker) Addrs() []string { return b.cluster.ListenAddrs() }

// Close stops the broker and flushes its log.
func (b *Broker) Close() { b.cluster.Close() }
