package walk_test

import (
	"testing"

	"flowlab/flow"
	"flowlab/walk"
)

// eventKnobs are the event-driven knobs the test walks use, declared as the
// scenario declares them. The server's test loads every shipped walk against
// the live scenarios' own declarations.
func eventKnobs() []flow.Knob {
	ks := []flow.Knob{
		{Name: "order-service.rate", Label: "Orders per second", Type: flow.IntKnob, Min: 1, Max: 500, Off: "paused", Value: 2},
		{Name: "order-service.send-100", Label: "Send 100 orders", Type: flow.ActionKnob},
		{Name: "order-service.confirms", Label: "Publisher confirms", Type: flow.BoolKnob, Value: false},
	}
	for _, c := range []string{"inventory", "email", "analytics"} {
		ks = append(ks,
			flow.Knob{Name: c + ".stop", Label: "Stop", Type: flow.ActionKnob},
			flow.Knob{Name: c + ".restart", Label: "Restart", Type: flow.ActionKnob},
			flow.Knob{Name: c + ".queue", Label: "Queue", Type: flow.ChoiceKnob, Value: "exclusive",
				Choices: []flow.Choice{{Value: "exclusive"}, {Value: "durable"}}},
		)
	}
	return ks
}

var eventPresets = []flow.Preset{{Name: "article"}, {Name: "reliable"}}

// catalogs are the test catalogs: event-driven with eventKnobs, the other
// patterns with their docs' names and no knobs.
func catalogs(t testing.TB) map[string]*walk.Catalog {
	t.Helper()
	cats := map[string]*walk.Catalog{}
	for _, p := range []string{"request-response", "event-driven", "work-queue", "async-messaging"} {
		var ks []flow.Knob
		var ps []flow.Preset
		if p == "event-driven" {
			ks, ps = eventKnobs(), eventPresets
		}
		c, err := walk.NewCatalog(p, ks, ps)
		if err != nil {
			t.Fatal(err)
		}
		cats[p] = c
	}
	return cats
}

func TestNewCatalogRefusesAnUnknownPattern(t *testing.T) {
	if _, err := walk.NewCatalog("carrier-pigeon", nil, nil); flow.KindOf(err) != flow.NotFound {
		t.Fatalf("NewCatalog(carrier-pigeon) = %v, want a not-found error", err)
	}
}
