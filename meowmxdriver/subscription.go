package meowmxdriver

// SubscriptionExecutor stores subscription checkpoints. (Filled in by the
// subscriptions work.)
type SubscriptionExecutor interface{}
