package source

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// compareCursor orders two cursor values: numerically when both are
// numbers, in time when both are RFC 3339 timestamps, else as strings.
func compareCursor(a, b any) int {
	as, bs := fmt.Sprint(a), fmt.Sprint(b)
	af, aerr := strconv.ParseFloat(as, 64)
	bf, berr := strconv.ParseFloat(bs, 64)
	if aerr == nil && berr == nil {
		switch {
		case af < bf:
			return -1
		case af > bf:
			return 1
		}
		return 0
	}
	at, aerr := time.Parse(time.RFC3339Nano, as)
	bt, berr := time.Parse(time.RFC3339Nano, bs)
	if aerr == nil && berr == nil {
		return at.Compare(bt)
	}
	return strings.Compare(as, bs)
}

// lookBack takes d off a cursor value: off a timestamp (kept in its
// format as far as RFC 3339 goes), or d in seconds off a number.
func lookBack(v any, d time.Duration) any {
	if d <= 0 || v == nil {
		return v
	}
	s := fmt.Sprint(v)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		layout := time.RFC3339
		if strings.Contains(s, ".") {
			layout = "2006-01-02T15:04:05.000Z07:00"
		}
		return t.Add(-d).Format(layout)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n - int64(d/time.Second)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f - d.Seconds()
	}
	return v
}
