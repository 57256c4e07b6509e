package cuda

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"strings"
)

// Reading is one reading of the fast telemetry of one GPU: everything but
// the energy counter, which some GPUs take milliseconds to read (see
// EnergyReading).
type Reading struct {
	// PowerMW is NVML's power draw (nvidia-smi power.draw): a one-second
	// average on Hopper, Blackwell and most Ampere GPUs, instantaneous on
	// older ones.
	PowerMW Maybe[uint32] `json:"power_mw"`
	// PowerInstantMW is the instantaneous power draw, where the driver
	// reports it (nvidia-smi power.draw.instant).
	PowerInstantMW  Maybe[uint32] `json:"power_instant_mw"`
	MemoryUsedBytes Maybe[uint64] `json:"memory_used_bytes"`
	SMClockMHz      Maybe[uint32] `json:"sm_clock_mhz"`
	MemoryClockMHz  Maybe[uint32] `json:"memory_clock_mhz"`
	// Utilization in percent over the driver's last sample period.
	GPUUtilPercent    Maybe[uint32] `json:"gpu_util_pct"`
	MemoryUtilPercent Maybe[uint32] `json:"memory_util_pct"`
	TemperatureC      Maybe[uint32] `json:"temperature_c"`
	// Throttle is why the clocks are below their maximum right now.
	Throttle Maybe[ThrottleReasons] `json:"throttle"`
}

// Power is the instantaneous power where the GPU reports it, else NVML's
// power draw.
func (r Reading) Power() Maybe[uint32] {
	if r.PowerInstantMW.Valid {
		return r.PowerInstantMW
	}
	return r.PowerMW
}

// DriverPowerSample is one power sample the driver took itself. The driver
// samples power every 20 ms or so on H100 and keeps the last couple of
// seconds; these samples carry the driver's own timestamps, so they place
// power in time far better than the energy counter, which changes only every
// 100 ms.
type DriverPowerSample struct {
	// TimeNs is the driver's timestamp in CLOCK_MONOTONIC nanoseconds.
	TimeNs int64 `json:"t_ns"`
	// DriverUs is the driver's own timestamp: microseconds since 1970.
	DriverUs uint64 `json:"driver_us"`
	PowerMW  uint32 `json:"power_mw"`
}

// ThrottleReasons is NVML's bitmask of reasons the clocks are held below
// their maximum (nvmlClocksEventReason*, formerly nvmlClocksThrottleReason*).
type ThrottleReasons uint64

// The bits of ThrottleReasons, with the values NVML gives them.
const (
	ThrottleGPUIdle              ThrottleReasons = 0x1
	ThrottleApplicationsClocks   ThrottleReasons = 0x2
	ThrottleSWPowerCap           ThrottleReasons = 0x4
	ThrottleHWSlowdown           ThrottleReasons = 0x8
	ThrottleSyncBoost            ThrottleReasons = 0x10
	ThrottleSWThermalSlowdown    ThrottleReasons = 0x20
	ThrottleHWThermalSlowdown    ThrottleReasons = 0x40
	ThrottleHWPowerBrakeSlowdown ThrottleReasons = 0x80
	ThrottleDisplayClocks        ThrottleReasons = 0x100
	ThrottleBoardLimit           ThrottleReasons = 0x200
	ThrottleReliability          ThrottleReasons = 0x400
)

var throttleNames = [...]string{
	"gpu_idle",
	"applications_clocks_setting",
	"sw_power_cap",
	"hw_slowdown",
	"sync_boost",
	"sw_thermal_slowdown",
	"hw_thermal_slowdown",
	"hw_power_brake_slowdown",
	"display_clocks_setting",
	"board_limit",
	"reliability",
}

// Names lists the set bits by name, lowest bit first; a bit NVML has not
// named (yet) appears as "bit<n>".
func (t ThrottleReasons) Names() []string {
	names := make([]string, 0, bits.OnesCount64(uint64(t)))
	for v := uint64(t); v != 0; v &= v - 1 {
		bit := bits.TrailingZeros64(v)
		if bit < len(throttleNames) {
			names = append(names, throttleNames[bit])
		} else {
			names = append(names, fmt.Sprintf("bit%d", bit))
		}
	}
	return names
}

// Slowing reports whether any reason other than idling, the application
// clock setting or the display clock setting holds the clocks down: the
// reasons that make a measurement slower than the hardware allows.
func (t ThrottleReasons) Slowing() bool {
	return t&^(ThrottleGPUIdle|ThrottleApplicationsClocks|ThrottleDisplayClocks) != 0
}

func (t ThrottleReasons) String() string {
	if t == 0 {
		return "none"
	}
	return strings.Join(t.Names(), ",")
}

// MarshalJSON writes the reasons as a list of names.
func (t ThrottleReasons) MarshalJSON() ([]byte, error) { return json.Marshal(t.Names()) }

// UnmarshalJSON reads a list of names back.
func (t *ThrottleReasons) UnmarshalJSON(b []byte) error {
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return fmt.Errorf("throttle reasons: %w", err)
	}
	var v ThrottleReasons
	for _, n := range names {
		bit, err := throttleBit(n)
		if err != nil {
			return err
		}
		v |= 1 << bit
	}
	*t = v
	return nil
}

func throttleBit(name string) (int, error) {
	for i, n := range throttleNames {
		if n == name {
			return i, nil
		}
	}
	var bit int
	if _, err := fmt.Sscanf(name, "bit%d", &bit); err == nil && bit >= 0 && bit < 64 {
		return bit, nil
	}
	return 0, fmt.Errorf("throttle reasons: unknown reason %q", name)
}
