// Package kafka holds the Kafka plumbing every costplane service shares:
// configuration, topic creation, an acknowledged producer, and the two
// consumer loops that carry the delivery guarantees of DESIGN §5.
//
// Runner is for stages that write PostgreSQL. It stores the consumed
// offsets in the same PostgreSQL transaction as the batch's results and
// resumes from them on assignment, so a crash at any point neither loses
// nor repeats a record's effect.
//
// TxnRunner is for stages that read Kafka and write Kafka. It produces a
// batch's output and commits the consumed offsets in one Kafka
// transaction.
//
// Both read with read_committed and send records their handler rejects to
// the dead-letter topic with the reason in a header.
package kafka
