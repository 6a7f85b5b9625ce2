package steps

func (l *Limits) validate(errs *ErrorList) {
	if l == nil {
		return
	}
	if l.Rate != "" {
		if _, _, err := ParseRate(l.Rate); err != nil {
			errs.Add(l.Pos, "e.g. rate: 10/s, 600/m", "limits: %v", err)
		}
	} else if l.Burst != 0 {
		errs.Add(l.Pos, "", "limits: burst needs a rate")
	}
	if l.Burst < 0 || l.MaxInFlight < 0 {
		errs.Add(l.Pos, "", "limits: burst and max_in_flight must not be negative")
	}
}

func (b *Breaker) validate(errs *ErrorList) {
	if b == nil {
		return
	}
	if b.Failures < 0 || b.Cooldown < 0 {
		errs.Add(b.Pos, "e.g. breaker: { failures: 5, cooldown: 30s }", "breaker: failures and cooldown must not be negative")
	}
}
