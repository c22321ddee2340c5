package errkind_test

import (
	"errors"
	"fmt"

	"github.com/memconnect/memconnect/errkind"
)

// A layer gives its sentinel a kind and a sentence where it makes it;
// whoever shows the error reads them back, however it was wrapped.
func ExampleOf() {
	errBusy := errkind.New(errkind.Conflict, "store: busy", "Another sign-in is waiting. Finish it first.")
	err := fmt.Errorf("connect work/honcho: %w", errBusy)

	if c, ok := errkind.Of(err); ok {
		fmt.Println(c.Kind(), "|", c.Message())
	}
	fmt.Println(errors.Is(err, errBusy))
	// Output:
	// conflict | Another sign-in is waiting. Finish it first.
	// true
}
