package connid_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/memconnect/memconnect/connid"
)

func TestForms(t *testing.T) {
	for _, tt := range []struct {
		id          connid.ID
		key, cursor string
	}{
		{connid.ID{Profile: "default", Provider: "honcho"}, "honcho/default", "default/honcho"},
		{connid.ID{Profile: "work", Provider: "zep-2"}, "zep-2/work", "work/zep-2"},
	} {
		if got := tt.id.String(); got != tt.key {
			t.Errorf("%#v.String() = %q, want %q", tt.id, got, tt.key)
		}
		if got := tt.id.Cursor(); got != tt.cursor {
			t.Errorf("%#v.Cursor() = %q, want %q", tt.id, got, tt.cursor)
		}
		if got, err := connid.Parse(tt.key); err != nil || got != tt.id {
			t.Errorf("Parse(%q) = %#v, %v; want %#v", tt.key, got, err, tt.id)
		}
		if got, err := connid.ParseCursor(tt.cursor); err != nil || got != tt.id {
			t.Errorf("ParseCursor(%q) = %#v, %v; want %#v", tt.cursor, got, err, tt.id)
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, s := range []string{"", "honcho", "/default", "honcho/", "/"} {
		if _, err := connid.Parse(s); !errors.Is(err, connid.ErrMalformed) {
			t.Errorf("Parse(%q) error %v, want ErrMalformed", s, err)
		}
		if _, err := connid.ParseCursor(s); !errors.Is(err, connid.ErrMalformed) {
			t.Errorf("ParseCursor(%q) error %v, want ErrMalformed", s, err)
		}
	}
}

func TestCompareOrdersByProfileThenProvider(t *testing.T) {
	// "p" before "p-a", though the cursor "p-a/x" is less than "p/x" in bytes.
	ids := []connid.ID{{"work", "honcho"}, {"p-a", "x"}, {"default", "zep"}, {"p", "x"}, {"default", "honcho"}}
	slices.SortFunc(ids, connid.Compare)
	want := []connid.ID{{"default", "honcho"}, {"default", "zep"}, {"p", "x"}, {"p-a", "x"}, {"work", "honcho"}}
	if !slices.Equal(ids, want) {
		t.Errorf("sorted %v, want %v", ids, want)
	}
}

func Example() {
	id, err := connid.Parse("honcho/work")
	if err != nil {
		panic(err)
	}
	fmt.Println(id.Profile, id.Provider, id.Cursor())
	// Output: work honcho work/honcho
}
