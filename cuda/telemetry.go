package cuda

// Telemetry is the part of NVML that lmdrive uses. Implementations must be
// safe for concurrent use: the sampler reads while other code may ask for
// the inventory.
//
// GPU indices are NVML indices (0 … DeviceCount()-1, in PCI bus order). They
// match CUDA device ordinals only under CUDA_DEVICE_ORDER=PCI_BUS_ID and
// without CUDA_VISIBLE_DEVICES; match on UUID or PCI bus ID otherwise
// (Inventory.IndexByUUID, Inventory.IndexByBusID).
type Telemetry interface {
	// System returns driver, CUDA driver and NVML versions.
	System() (System, error)
	// DeviceCount is how many GPUs NVML sees.
	DeviceCount() int
	// Device returns the static description of one GPU. Readings the GPU
	// does not support are left invalid; readings that failed for another
	// reason are left invalid and explained in Device.Problems. An error
	// means the GPU could not be identified at all.
	Device(index int) (Device, error)
	// NVLinks lists the active NVLinks of one GPU (none on PCIe-only GPUs).
	NVLinks(index int) ([]NVLink, error)
	// Path describes how two GPUs reach each other over PCIe and whether
	// they can access each other's memory (peer to peer).
	Path(a, b int) (Path, error)
	// Read takes one reading of the fast telemetry of one GPU. Unsupported
	// readings are left invalid. The first failure other than "not
	// supported" comes back as the error, together with whatever could be
	// read.
	Read(index int) (Reading, error)
	// ReadEnergy reads the energy counter of one GPU: millijoules since
	// the driver was loaded, invalid where the GPU has none. On H100 this
	// keeps a CPU core busy for about 4 ms, and the value changes only
	// every 100 ms.
	ReadEnergy(index int) (Maybe[uint64], error)
	// PowerHistory returns the power samples the driver took itself that
	// are newer than the driver timestamp afterUs (0: all it still keeps),
	// oldest first; none where the driver keeps no history.
	PowerHistory(index int, afterUs uint64) ([]DriverPowerSample, error)
	// Close releases NVML. Other methods fail after Close.
	Close() error
}
