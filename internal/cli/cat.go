package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/meowmx/meowmx"
)

// cat is the demos' aggregate, rebuilt from the events of a "cat" stream.
type cat struct {
	Name    string
	Version int64 // -1: no events yet
	Meals   int
	Naps    int
	Pets    int
	LastAte string
	Mood    string
}

func catFromEvents(name string, events []*meowmx.RecordedEvent) *cat {
	c := &cat{Name: name, Version: -1, Mood: "curious"}
	for _, ev := range events {
		c.apply(ev.Type, ev.Data)
		c.Version = ev.Version
	}
	return c
}

func (c *cat) apply(eventType string, data json.RawMessage) {
	var d struct {
		Name string `json:"name"`
		Food string `json:"food"`
	}
	_ = json.Unmarshal(data, &d) // events are history: a payload that does not fit is skipped
	switch eventType {
	case "Adopted":
		if d.Name != "" {
			c.Name = d.Name
		}
		c.Mood = "curious"
	case "Fed":
		c.Meals++
		c.LastAte = d.Food
		c.Mood = "content"
	case "Napped":
		c.Naps++
		c.Mood = "sleepy"
	case "Petted":
		c.Pets++
		c.Mood = "purring"
	}
}

// next returns the event the cat's next update appends.
func (c *cat) next() meowmx.EventData {
	foods := []string{"tuna", "salmon", "chicken", "a houseplant"}
	switch {
	case c.Version < 0:
		return meowmx.EventData{Type: "Adopted", Data: mustJSON(map[string]string{"name": c.Name})}
	case c.Version%3 == 0:
		return meowmx.EventData{Type: "Fed", Data: mustJSON(map[string]string{"food": foods[c.Meals%len(foods)]})}
	case c.Version%3 == 1:
		return meowmx.EventData{Type: "Petted", Data: json.RawMessage(`{}`)}
	}
	return meowmx.EventData{Type: "Napped", Data: json.RawMessage(`{"hours":3}`)}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// String draws the cat.
func (c *cat) String() string {
	var b strings.Builder
	say := strings.ToUpper(strings.Join(strings.Split("meow", ""), " "))
	if c.Version < 0 {
		say = "? ? ?"
	}
	fmt.Fprintf(&b, "        ^__^\n    \\   o . o    <  %s >\n     |    ---\n     ..    ..\n", say)
	if c.Version < 0 {
		fmt.Fprintf(&b, "%s has not been adopted yet.\n", c.Name)
		return b.String()
	}
	fmt.Fprintf(&b, "%s is %s: %d meals", c.Name, c.Mood, c.Meals)
	if c.LastAte != "" {
		fmt.Fprintf(&b, " (last: %s)", c.LastAte)
	}
	fmt.Fprintf(&b, ", %d naps, %d pets (version %d)\n", c.Naps, c.Pets, c.Version)
	return b.String()
}
