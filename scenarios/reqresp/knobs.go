package reqresp

import (
	"encoding/json"

	"flowlab/flow"
)

// settings are the knobs' values. A Set stores a changed copy, so a call
// reads one consistent set of values per attempt without locking.
type settings struct {
	// product-service
	up        bool
	hang      bool
	release   chan struct{} // while hanging: closed when the hang ends, to answer the held requests
	latencyMS int
	errorRate int // percent
	// order-service
	rate            int // calls started per second
	unknownIDs      int // percent
	timeoutMS       int // 0: no timeout
	retry           string
	maxAttempts     int
	retryDelayMS    int
	breaker         bool
	breakerFailures int
	breakerOpenMS   int
	errors          string
}

// The choice values.
const (
	retryNone        = "none"
	retryFixed       = "fixed"
	retryExponential = "exponential"
	errorsSwallow    = "swallow"
	errorsRaise      = "raise"
)

// articleSettings are the defaults: the article's code under a modest load.
var articleSettings = settings{
	up:              true,
	rate:            10,
	retry:           retryNone,
	maxAttempts:     3,
	retryDelayMS:    100,
	breakerFailures: 5,
	breakerOpenMS:   5000,
	errors:          errorsSwallow,
}

// knobs declares every knob, in the order the page lists them and presets
// apply them. Knobs fills in the values.
var knobs = []flow.Knob{
	{Name: "up", Group: productService, Label: "Up", Type: flow.BoolKnob,
		Help: "Switch off to take product-service down for real: its port closes and open connections drop."},
	{Name: "hang", Group: productService, Label: "Hang", Type: flow.BoolKnob,
		Help: "Switch on and product-service takes every request and never answers, like a stuck process: a caller with no timeout waits for ever. Switched off, it answers the requests it held."},
	{Name: "latency_ms", Group: productService, Label: "Latency", Type: flow.IntKnob, Min: 0, Max: 5000, Step: 50, Unit: "ms",
		Help: "How long product-service takes before it answers each request."},
	{Name: "error_rate", Group: productService, Label: "Error rate", Type: flow.IntKnob, Min: 0, Max: 100, Step: 5, Unit: "%",
		Help: "Share of requests product-service answers with 503 Service Unavailable."},

	{Name: "rate", Group: orderService, Label: "Load", Type: flow.IntKnob, Min: 0, Max: 200, Step: 1, Unit: "req/s",
		Help: "Calls order-service starts each second, each on its own; 0 stops the load."},
	{Name: "unknown_ids", Group: orderService, Label: "Unknown ids", Type: flow.IntKnob, Min: 0, Max: 100, Step: 5, Unit: "%",
		Help: "Share of calls that ask for a product that does not exist (404 Not Found)."},
	{Name: "timeout_ms", Group: orderService, Label: "Timeout", Type: flow.IntKnob, Min: 50, Max: 10000, Step: 50, Unit: "ms", Off: "none",
		Help: "How long one attempt may wait for an answer. none waits for ever, like requests.get without timeout=. A new value applies to the attempts that start after it; those already waiting keep the timeout they started with, as requests.get does."},
	{Name: "retry", Group: orderService, Label: "Retries", Type: flow.ChoiceKnob,
		Choices: []flow.Choice{
			{Value: retryNone, Label: "none"},
			{Value: retryFixed, Label: "fixed delay"},
			{Value: retryExponential, Label: "exponential backoff + full jitter"},
		},
		Help: "What order-service does after a timeout, a connection error or a 5xx. A 404 is never retried."},
	{Name: "max_attempts", Group: orderService, Label: "Max attempts", Type: flow.IntKnob, Min: 1, Max: 10, Step: 1,
		Help: "Attempts per call when retrying, the first one included."},
	{Name: "retry_delay_ms", Group: orderService, Label: "Retry delay", Type: flow.IntKnob, Min: 10, Max: 5000, Step: 10, Unit: "ms",
		Help: "The wait before each retry (fixed), or the base of a random wait up to base × 2^(attempt−1) (exponential)."},
	{Name: "breaker", Group: orderService, Label: "Circuit breaker", Type: flow.BoolKnob,
		Help: "After repeated failures, stop calling product-service and fail fast; later let one trial call through."},
	{Name: "breaker_failures", Group: orderService, Label: "Trip after", Type: flow.IntKnob, Min: 1, Max: 100, Step: 1, Unit: "failures",
		Help: "Failures in a row (timeouts, connection errors, 5xx) that open the breaker. A 404 counts as a success."},
	{Name: "breaker_open_ms", Group: orderService, Label: "Open for", Type: flow.IntKnob, Min: 500, Max: 60000, Step: 500, Unit: "ms",
		Help: "How long an open breaker blocks calls (each fails at once, without reaching product-service) before it lets one trial call through (half-open)."},
	{Name: "errors", Group: orderService, Label: "Error handling", Type: flow.ChoiceKnob,
		Choices: []flow.Choice{
			{Value: errorsSwallow, Label: "print and return None (article)"},
			{Value: errorsRaise, Label: "raise: the caller tells failures apart"},
		},
		Help: "Swallowed, every failure becomes None: the caller cannot tell \"not found\" from \"down\". Raised, it can."},
}

// Knobs declares every knob with its current value.
func (s *Scenario) Knobs() []flow.Knob {
	c := s.settings()
	out := make([]flow.Knob, len(knobs))
	for i, k := range knobs {
		k.Value = c.value(k.Name)
		out[i] = k
	}
	return out
}

// Presets are the article's code and its resilient counterpart.
func (s *Scenario) Presets() []flow.Preset {
	return []flow.Preset{
		{Name: "article", Label: "As in the article",
			Help: "No timeout, no retries, no breaker, and every error printed and turned into None.",
			Values: map[string]any{
				"timeout_ms": 0, "retry": retryNone, "breaker": false, "errors": errorsSwallow,
			}},
		{Name: "resilient", Label: "Resilient",
			Help: "A 500 ms timeout, 3 attempts with exponential backoff and jitter, a circuit breaker, and errors raised.",
			Values: map[string]any{
				"timeout_ms": 500, "retry": retryExponential, "max_attempts": 3, "retry_delay_ms": 100,
				"breaker": true, "breaker_failures": 5, "breaker_open_ms": 5000, "errors": errorsRaise,
			}},
	}
}

// Set changes one knob; it applies to the next attempt of every call. A value
// of the wrong type or out of range is refused (Invalid) and changes nothing.
func (s *Scenario) Set(knob string, value any) error {
	k, err := flow.FindKnob(s, knob)
	if err != nil {
		return err
	}
	// The declaration's own check, so a direct caller gets the same answer as
	// one that came through flow.SetKnob.
	raw, err := json.Marshal(value)
	if err != nil {
		return flow.Errorf(flow.Invalid, "%s cannot take %v", k.Label, value)
	}
	if value, err = k.Parse(raw); err != nil {
		return err
	}

	s.setMu.Lock()
	defer s.setMu.Unlock()
	old := s.settings()
	c := *old
	c.set(knob, value)
	moved := c.hang != old.hang
	if knob == "up" {
		if moved, err = s.product.setUp(c.up); err != nil {
			return err
		}
	}
	switch {
	case c.hang && !old.hang:
		c.release = make(chan struct{})
	case !c.hang && old.hang:
		close(old.release)
		c.release = nil
	}
	s.current.Store(&c)
	s.events.Emit(flow.Event{Kind: flow.KindState, Detail: flow.Detail{Knob: knob, Value: value}})
	switch {
	case moved:
		s.emitState(productService, c.productWord())
	case knob == "rate":
		select {
		case s.rateChanged <- struct{}{}:
		default: // a wake-up is already pending
		}
	case c.breaker != old.breaker || c.breaker &&
		(c.breakerFailures != old.breakerFailures || c.breakerOpenMS != old.breakerOpenMS):
		s.setBreaker(&c)
	}
	return nil
}

func (s *Scenario) settings() *settings { return s.current.Load() }

func (c *settings) value(knob string) any {
	switch knob {
	case "up":
		return c.up
	case "hang":
		return c.hang
	case "latency_ms":
		return c.latencyMS
	case "error_rate":
		return c.errorRate
	case "rate":
		return c.rate
	case "unknown_ids":
		return c.unknownIDs
	case "timeout_ms":
		return c.timeoutMS
	case "retry":
		return c.retry
	case "max_attempts":
		return c.maxAttempts
	case "retry_delay_ms":
		return c.retryDelayMS
	case "breaker":
		return c.breaker
	case "breaker_failures":
		return c.breakerFailures
	case "breaker_open_ms":
		return c.breakerOpenMS
	case "errors":
		return c.errors
	}
	return nil
}

// set stores a value that Knob.Parse returned for knob, so its type is right.
func (c *settings) set(knob string, v any) {
	switch knob {
	case "up":
		c.up = v.(bool)
	case "hang":
		c.hang = v.(bool)
	case "latency_ms":
		c.latencyMS = v.(int)
	case "error_rate":
		c.errorRate = v.(int)
	case "rate":
		c.rate = v.(int)
	case "unknown_ids":
		c.unknownIDs = v.(int)
	case "timeout_ms":
		c.timeoutMS = v.(int)
	case "retry":
		c.retry = v.(string)
	case "max_attempts":
		c.maxAttempts = v.(int)
	case "retry_delay_ms":
		c.retryDelayMS = v.(int)
	case "breaker":
		c.breaker = v.(bool)
	case "breaker_failures":
		c.breakerFailures = v.(int)
	case "breaker_open_ms":
		c.breakerOpenMS = v.(int)
	case "errors":
		c.errors = v.(string)
	}
}

// productWord is product-service's state word: what its callers meet first.
func (c *settings) productWord() string {
	switch {
	case !c.up:
		return "down"
	case c.hang:
		return "hanging"
	case c.errorRate > 0:
		return "erroring"
	case c.latencyMS > 0:
		return "slow"
	}
	return "up"
}
