package eventdriven

// For the tests of the consumer's check of an event.
var (
	WellFormed           = wellFormed
	AsOrderServiceWrites = asOrderServiceWrites
	OrderEvent           = orderEvent
)
