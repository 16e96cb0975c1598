// Package meowmxnats relays the events of a meowmx store into NATS
// JetStream, for consumers on other machines and in other languages.
//
// [Run] is a durable meowmx subscription that publishes each event to
// the subject <prefix>.<aggregate type>.<aggregate id> of a JetStream
// stream, which it creates when it is missing:
//
//	nc, err := nats.Connect(url, nats.ReconnectBufSize(-1), nats.MaxReconnects(-1))
//	err = meowmxnats.Run(ctx, store, nc, &meowmxnats.Config{SubjectPrefix: "shop"})
//
// # Subjects
//
// Aggregate types and ids are encoded as subject tokens by [EncodeToken]:
// A–Z, a–z, 0–9, '-' and '_' stand for themselves, every other byte is
// percent-encoded ("%2E" for '.'), so "eu.west/7" becomes "eu%2Ewest%2F7".
// [DecodeToken] and [ParseSubject] reverse it; any URL percent-decoder does
// too. A consumer of one category filters on "shop.order.*", of one stream
// on "shop.order.<encoded id>".
//
// # Messages
//
// The body is the event's JSON payload. The headers are listed by the
// Header* constants: event type, version, global position, event id,
// UUID (when set), recorded time and metadata; Nats-Msg-Id is
// "<prefix>:<event id>", for JetStream's de-duplication.
//
// # Delivery
//
// The relay's checkpoint advances only after JetStream acknowledged the
// events: it delivers at least once, and JetStream's de-duplication turns
// what it sends again within the stream's duplicate window (2 minutes
// unless configured) into exactly once. Events of a stream are published
// in order, by one relay at a time, also when it runs as a consumer group
// (Config.Partitions).
//
// This package is part of the meowmx module but only programs that import
// it link nats.go.
package meowmxnats
