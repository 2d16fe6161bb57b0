package localmode

import (
	"encoding/json"
	"testing"
)

func TestConfigJSONDurationsReadable(t *testing.T) {
	c := Default()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["duration"] != c.Duration.String() || m["slo"] != c.SLO.String() {
		t.Errorf("durations not written as strings: duration=%v slo=%v", m["duration"], m["slo"])
	}
	if m["interval"] != c.EffectiveInterval().String() {
		t.Errorf("interval %v, want the effective %v", m["interval"], c.EffectiveInterval())
	}
	if m["budgetCores"] != c.BudgetCores {
		t.Errorf("other fields lost: budgetCores=%v", m["budgetCores"])
	}
}
