package forecast

import (
	"math"
	"testing"
)

func TestFitRecoversAWeeklyPattern(t *testing.T) {
	week := []float64{100, 110, 105, 120, 115, 40, 30}
	var y []float64
	for i := range 70 {
		y = append(y, week[i%7]*(1+0.002*float64(i)))
	}
	m := Fit(y)
	if m.Method() != MethodHoltWinters && m.Method() != MethodLogHoltWinters {
		t.Fatalf("method = %s", m.Method())
	}
	for h, p := range m.Forecast(14) {
		want := week[(70+h)%7] * (1 + 0.002*float64(70+h))
		if math.Abs(p.Mean-want) > 0.03*want {
			t.Errorf("day %d: forecast %.1f, want about %.1f", h+1, p.Mean, want)
		}
		if p.Lower > p.Mean || p.Upper < p.Mean {
			t.Errorf("day %d: interval [%.1f, %.1f] misses the mean %.1f", h+1, p.Lower,
				p.Upper, p.Mean)
		}
	}
}

func TestShortHistoryUsesTheRunRate(t *testing.T) {
	m := Fit([]float64{0, 0, 0, 10, 12, 11})
	if m.Method() != MethodRunRate {
		t.Fatalf("method = %s, want %s", m.Method(), MethodRunRate)
	}
	p := m.Forecast(1)[0]
	if math.Abs(p.Mean-11) > 1e-9 || p.Lower >= 11 || p.Upper <= 11 {
		t.Errorf("run-rate forecast = %+v, want 11 inside its interval", p)
	}
	if m := Fit(make([]float64, 30)); m.Method() != MethodNone || m.Forecast(3)[2].Mean != 0 {
		t.Errorf("no spend: method %s", m.Method())
	}
}

func TestSumIntervalWidensWithTheHorizon(t *testing.T) {
	var y []float64
	for i := range 60 {
		y = append(y, 50+10*math.Sin(float64(i)*2*math.Pi/7)+3*math.Sin(float64(i)*1.7))
	}
	m := Fit(y)
	mean7, lo7, hi7 := m.SumInterval(7)
	mean28, lo28, hi28 := m.SumInterval(28)
	if mean28 < 3.5*mean7 || lo28 <= lo7 || hi28 <= hi7 {
		t.Errorf("sums: 7 days %.0f -%.0f +%.0f, 28 days %.0f -%.0f +%.0f", mean7, lo7, hi7,
			mean28, lo28, hi28)
	}
	again, _, _ := m.SumInterval(28)
	if again != mean28 {
		t.Error("SumInterval is not deterministic")
	}
}
