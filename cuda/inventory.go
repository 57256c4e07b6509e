package cuda

import (
	"errors"
	"fmt"
)

// ErrNoGPUs means NVML loaded but reports no GPUs.
var ErrNoGPUs = errors.New("NVML reports no GPUs (are the devices visible here? in a container, pass them with --gpus or CDI)")

// ReadInventory describes the system, every GPU and every pair of GPUs.
func ReadInventory(t Telemetry) (Inventory, error) {
	sys, err := t.System()
	if err != nil {
		return Inventory{}, err
	}
	inv := Inventory{System: sys}
	n := t.DeviceCount()
	if n == 0 {
		return inv, ErrNoGPUs
	}
	links := make([][]NVLink, n)
	for i := range n {
		d, err := t.Device(i)
		if err != nil {
			return inv, err
		}
		inv.Devices = append(inv.Devices, d)
		if links[i], err = t.NVLinks(i); err != nil {
			return inv, err
		}
	}
	for a := range n {
		for b := a + 1; b < n; b++ {
			path, err := t.Path(a, b)
			if err != nil {
				return inv, err
			}
			p := Pair{A: a, B: b, Path: path}
			p.NVLinks, p.ViaNVSwitch = countNVLinks(inv.Devices[b], links[a], links[b])
			inv.Pairs = append(inv.Pairs, p)
		}
	}
	return inv, nil
}

// countNVLinks counts the NVLinks between GPU a (its links given) and GPU b.
// Direct links are those whose far end is b. Without direct links, two GPUs
// that both reach NVSwitches talk through them with as many links as the
// less connected one has; that is what nvidia-smi topo -m shows as NV<n> on
// DGX/HGX systems.
func countNVLinks(b Device, linksA, linksB []NVLink) (count int, viaSwitch bool) {
	if b.PCIBusID.Valid {
		want := normalizeBusID(b.PCIBusID.Value)
		for _, l := range linksA {
			if l.Remote == RemoteGPU && normalizeBusID(l.RemoteBusID) == want {
				count++
			}
		}
	}
	if count > 0 {
		return count, false
	}
	switchA, switchB := countRemote(linksA, RemoteNVSwitch), countRemote(linksB, RemoteNVSwitch)
	if switchA == 0 || switchB == 0 {
		return 0, false
	}
	return min(switchA, switchB), true
}

func countRemote(links []NVLink, remote NVLinkRemote) int {
	n := 0
	for _, l := range links {
		if l.Remote == remote {
			n++
		}
	}
	return n
}

// CheckIndex reports an out-of-range GPU index; implementations of Telemetry
// use it so that the message is the same everywhere.
func CheckIndex(index, count int) error {
	if count == 0 {
		return fmt.Errorf("GPU index %d is out of range: %w", index, ErrNoGPUs)
	}
	if index < 0 || index >= count {
		return fmt.Errorf("GPU index %d is out of range: NVML sees %d GPU(s), indices 0 to %d", index, count, count-1)
	}
	return nil
}
