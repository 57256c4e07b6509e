//go:build cgo

package nvml

import (
	"bytes"
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/lmdrive/lmdrive/cuda"
)

// openReal opens the host's NVML, or skips where there is none.
func openReal(t testing.TB) cuda.Telemetry {
	t.Helper()
	tel, err := Open()
	if errors.Is(err, cuda.ErrUnavailable) {
		t.Skipf("no NVML here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tel.Close(); err != nil {
			t.Error(err)
		}
	})
	return tel
}

// TestRealGPUs reads the inventory and samples every GPU of this host for a
// moment. It skips on hosts without an NVIDIA driver.
func TestRealGPUs(t *testing.T) {
	tel := openReal(t)
	inv, err := cuda.ReadInventory(tel)
	if errors.Is(err, cuda.ErrNoGPUs) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := cuda.WriteInventory(&buf, inv); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", buf.String())

	var gpus []int
	for _, d := range inv.Devices {
		gpus = append(gpus, d.Index)
	}
	s, err := cuda.NewSampler(tel, gpus, cuda.DefaultSampleInterval)
	if err != nil {
		t.Fatal(err)
	}
	cpu0 := cpuTime(t)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	submit := cuda.MonotonicNanos()
	time.Sleep(300 * time.Millisecond)
	first := cuda.MonotonicNanos()
	time.Sleep(700 * time.Millisecond)
	last := cuda.MonotonicNanos()
	series, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	stopped := cuda.MonotonicNanos()
	cpu := cpuTime(t) - cpu0
	t.Logf("sampler: %v CPU over %v (Start to Stop returning), %d GPUs", cpu, time.Duration(stopped-submit), len(gpus))
	energy, err := cuda.PhaseEnergies(series, cuda.Phases{SubmitNs: submit, FirstTokenNs: first, LastTokenNs: last})
	if err != nil {
		t.Fatal(err)
	}
	for i, ser := range series {
		if ser.Failures > 0 {
			t.Errorf("GPU %d: %d failed readings, first: %s", ser.GPU, ser.Failures, ser.FirstError)
		}
		c := ser.ReadCost()
		x := ser.Samples[len(ser.Samples)-1]
		e := energy[i]
		t.Logf("GPU %d: fast reads %d, mean %v, max %v; energy reads %d, mean %v, max %v; history fetches %d, mean %v, max %v",
			ser.GPU, c.Fast.Reads, time.Duration(c.Fast.MeanNs), time.Duration(c.Fast.MaxNs),
			c.Energy.Reads, time.Duration(c.Energy.MeanNs), time.Duration(c.Energy.MaxNs),
			c.History.Reads, time.Duration(c.History.MeanNs), time.Duration(c.History.MaxNs))
		if h := ser.DriverPower; len(h) > 1 {
			t.Logf("GPU %d: %d driver power samples over %v", ser.GPU, len(h), time.Duration(h[len(h)-1].TimeNs-h[0].TimeNs))
		}
		if cc, ok := e.CounterCheck.Get(); ok {
			t.Logf("GPU %d: counter check over %v: counter %.3f J, history %.3f J (ratio %.4f)",
				ser.GPU, time.Duration(cc.ToNs-cc.FromNs), cc.CounterJ, cc.HistoryJ, cc.HistoryJ/cc.CounterJ)
		}
		t.Logf("GPU %d: last: %s mW (instant %s), %s B, SM %s MHz, mem %s MHz, util %s/%s %%, %s C, throttle %s",
			ser.GPU, x.PowerMW, x.PowerInstantMW, x.MemoryUsedBytes, x.SMClockMHz,
			x.MemoryClockMHz, x.GPUUtilPercent, x.MemoryUtilPercent, x.TemperatureC, x.Throttle)
		for _, en := range ser.Energy {
			if en.Edge {
				t.Logf("GPU %d: counter edge at %+.1f ms from submit (read %v)", ser.GPU, float64(en.CounterNs-submit)/1e6, time.Duration(en.ReadNs))
			}
		}
		t.Logf("GPU %d: 'prefill' %s J (%s W, %s), 'decode' %s J (%s W, %s), peak memory %s B",
			e.GPU, e.Prefill.EnergyJ, e.Prefill.MeanPowerW, e.Prefill.Source,
			e.Decode.EnergyJ, e.Decode.MeanPowerW, e.Decode.Source, e.PeakMemoryBytes)
	}
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRealRead measures one fast reading of GPU 0 through the host's
// NVML: the sampler's cost per GPU per sample on real hardware.
func BenchmarkRealRead(b *testing.B) {
	tel := openReal(b)
	if tel.DeviceCount() == 0 {
		b.Skip(cuda.ErrNoGPUs)
	}
	for b.Loop() {
		if _, err := tel.Read(0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/sample/GPU")
}

// BenchmarkRealEnergyRead measures one energy counter reading of GPU 0.
func BenchmarkRealEnergyRead(b *testing.B) {
	tel := openReal(b)
	if tel.DeviceCount() == 0 {
		b.Skip(cuda.ErrNoGPUs)
	}
	for b.Loop() {
		if _, err := tel.ReadEnergy(0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRealCalls times each NVML call the sampler makes, on GPU 0 of
// this host, to show where the time of a reading goes.
func BenchmarkRealCalls(b *testing.B) {
	tel, ok := openReal(b).(*telemetry)
	if !ok || tel.DeviceCount() == 0 {
		b.Skip("no GPU")
	}
	d := tel.devices[0]
	calls := []struct {
		name string
		call func() gonvml.Return
	}{
		{"energy", func() gonvml.Return { _, r := d.GetTotalEnergyConsumption(); return r }},
		{"power", func() gonvml.Return { _, r := d.GetPowerUsage(); return r }},
		{"memory", func() gonvml.Return { _, r := d.GetMemoryInfo(); return r }},
		{"sm_clock", func() gonvml.Return { _, r := d.GetClockInfo(gonvml.CLOCK_SM); return r }},
		{"mem_clock", func() gonvml.Return { _, r := d.GetClockInfo(gonvml.CLOCK_MEM); return r }},
		{"utilization", func() gonvml.Return { _, r := d.GetUtilizationRates(); return r }},
		{"temperature", func() gonvml.Return { _, r := d.GetTemperature(gonvml.TEMPERATURE_GPU); return r }},
		{"event_reasons", func() gonvml.Return { _, r := d.GetCurrentClocksEventReasons(); return r }},
		{"field_power_instant", func() gonvml.Return {
			return d.GetFieldValues([]gonvml.FieldValue{{FieldId: gonvml.FI_DEV_POWER_INSTANT}})
		}},
		{"power_history_100ms", func() gonvml.Return {
			_, _, r := d.GetSamples(gonvml.TOTAL_POWER_SAMPLES, uint64(time.Now().Add(-100*time.Millisecond).UnixMicro()))
			return r
		}},
	}
	for _, c := range calls {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if ret := c.call(); ret != gonvml.SUCCESS {
					b.Fatal(ret)
				}
			}
		})
	}
}
