package steps

// History says what plumb serve's lead history keeps of an integration's
// leads beyond each step's result and each try's status, class, error,
// rule and duration.
type History struct {
	// Exchanges: which leads also keep each try's request and response,
	// masked like every result and cut to 4 KiB a body (see
	// [HistoryExchangeModes]).
	Exchanges String `yaml:"exchanges"`
	Pos       Pos    `yaml:"-"`
}

// Keeps returns the history.exchanges mode of in (none when unset).
func (h *History) Keeps() HistoryExchanges {
	if h == nil || !h.Exchanges.IsSet() {
		return HistoryExchangesNone
	}
	return HistoryExchanges(h.Exchanges.Value)
}

// validate checks the history: section (nil: none).
func (h *History) validate(errs *ErrorList) {
	if h == nil {
		return
	}
	if e := HistoryExchanges(h.Exchanges.Value); h.Exchanges.IsSet() && !HistoryExchangeModes.Valid(e) {
		errs.Add(h.Exchanges.Pos, HistoryExchangeModes.Hint(), "history: unknown exchanges %q", e)
	}
}
