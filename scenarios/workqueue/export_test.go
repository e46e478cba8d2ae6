package workqueue

// MaxBacklog is the cap on jobs waiting to be sent.
const MaxBacklog = maxBacklog
