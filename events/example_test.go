package events_test

import (
	"fmt"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/oauth/flow"
)

// A host that is not a browser follows a profile's connection with the
// router's bus (memconnect.Router.Events).
func ExampleBus() {
	bus := events.NewBus()
	key := connid.ID{Profile: "default", Provider: "honcho"}
	sub, err := bus.Subscribe(key, 0)
	if err != nil {
		panic(err)
	}
	defer sub.Close()

	bus.PublishFlow(key, flow.Flow{ID: "f1", State: flow.StatePending})
	bus.Publish(events.Event{Key: key, Kind: events.KindConnection, Connection: events.Connected})

	for range 2 {
		ev := <-sub.Events()
		switch ev.Kind {
		case events.KindFlow:
			fmt.Println(ev.ID, "flow", ev.Flow.State)
		case events.KindConnection:
			fmt.Println(ev.ID, "connection", ev.Connection)
		}
	}
	// Output:
	// 1 flow pending
	// 2 connection connected
}
