package meowmx

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type shapeA struct {
	Name  string
	Count int `json:"count"`
	At    time.Time
	Tags  map[string][]int
	Next  *node
	embedded
}

type embedded struct{ Inner bool }

type node struct {
	Value int
	Next  *node // recursive
}

// shapeB is shapeA under another name: the same shape.
type shapeB struct {
	Name  string
	Count int `json:"count"`
	At    time.Time
	Tags  map[string][]int
	Next  *node
	embedded
}

type shapeRenamed struct {
	Name  string
	Total int `json:"count"`
	At    time.Time
	Tags  map[string][]int
	Next  *node
	embedded
}

type shapeRetagged struct {
	Name  string
	Count int `json:"count,omitempty"`
	At    time.Time
	Tags  map[string][]int
	Next  *node
	embedded
}

type shapeRetyped struct {
	Name  string
	Count int64 `json:"count"`
	At    time.Time
	Tags  map[string][]int
	Next  *node
	embedded
}

func TestStateShape(t *testing.T) {
	t.Parallel()
	shape := func(v any) string {
		s, err := stateShape(reflect.TypeOf(v))
		require.NoError(t, err)
		return s
	}
	a := shape(shapeA{})
	require.Equal(t, a, shape(shapeB{}), "the type's name does not matter")
	for _, v := range []any{shapeRenamed{}, shapeRetagged{}, shapeRetyped{}} {
		require.NotEqual(t, a, shape(v), "%T", v)
	}
	for _, v := range []any{
		struct{ hidden int }{},
		struct {
			Cache int `json:"-"`
		}{},
		struct{ Any any }{},
		struct{ F func() }{},
		struct{ C chan int }{},
		struct{ Deep []struct{ x int } }{},
	} {
		_, err := stateShape(reflect.TypeOf(v))
		require.Error(t, err, "%T", v)
	}
}
