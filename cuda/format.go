package cuda

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteInventory prints the inventory as tables for people: the driver
// stack, one row per GPU (identity and memory, then clocks and modes), the
// topology matrix and the P2P matrix, and any readings that failed.
func WriteInventory(w io.Writer, inv Inventory) error {
	var buf bytes.Buffer
	s := inv.System
	fmt.Fprintf(&buf, "Driver %s, CUDA driver %s, NVML %s\n\n", s.DriverVersion, s.CUDADriverVersion, s.NVMLVersion)

	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GPU\tNAME\tUUID\tBUS ID\tCC\tMEMORY USED / TOTAL\tPOWER LIMIT (DEFAULT, ENFORCED)")
	for _, d := range inv.Devices {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s / %s\t%s (%s, %s)\n", d.Index, d.Name, d.UUID, d.PCIBusID,
			d.ComputeCapability, mib(d.MemoryUsedBytes), mib(d.MemoryTotalBytes),
			watts(d.PowerLimitMW), watts(d.PowerDefaultLimitMW), watts(d.PowerEnforcedLimitMW))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "GPU\tSM CLOCK MHZ (NOW/MAX/APP)\tMEMORY CLOCK MHZ (NOW/MAX/APP)\tECC\tMIG\tPERSISTENCE\tPCIE NOW / MAX")
	for _, d := range inv.Devices {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s / %s\n", d.Index, clockTriple(d.SMClock), clockTriple(d.MemoryClock),
			d.ECC, d.MIG, onOff(d.Persistence), d.PCIeCurrent, d.PCIeMax)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(inv.Devices) > 1 {
		buf.WriteString("\nTopology: NV<n> = n NVLinks")
		if anyViaSwitch(inv.Pairs) {
			buf.WriteString(" (* through NVSwitches)")
		}
		buf.WriteString("; otherwise the PCIe path: PIX one PCIe switch, PXB several switches, " +
			"PHB a host bridge, NODE host bridges in one NUMA node, SYS across NUMA nodes\n")
		if err := writeMatrix(&buf, inv, func(p Pair) string {
			if p.ViaNVSwitch {
				return p.Label() + "*"
			}
			return p.Label()
		}); err != nil {
			return err
		}
		buf.WriteString("\nPeer-to-peer read/write: OK; CNS chipset, GNS GPU, TNS topology not supported; " +
			"DR disabled by registry key; NS not supported; U unknown\n")
		if err := writeMatrix(&buf, inv, func(p Pair) string {
			return p.P2PRead.String() + "/" + p.P2PWrite.String()
		}); err != nil {
			return err
		}
	}

	if problems := allProblems(inv); len(problems) > 0 {
		buf.WriteString("\nReadings that failed (shown as n/a above):\n")
		for _, p := range problems {
			buf.WriteString("  " + p + "\n")
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func writeMatrix(buf *bytes.Buffer, inv Inventory, cell func(Pair) string) error {
	tw := tabwriter.NewWriter(buf, 0, 0, 2, ' ', 0)
	for _, d := range inv.Devices {
		fmt.Fprintf(tw, "\tGPU%d", d.Index)
	}
	fmt.Fprintln(tw)
	for _, a := range inv.Devices {
		fmt.Fprintf(tw, "GPU%d", a.Index)
		for _, b := range inv.Devices {
			text := "X"
			if a.Index != b.Index {
				text = NotAvailable
				if p, ok := inv.Pair(a.Index, b.Index); ok {
					text = cell(p)
				}
			}
			fmt.Fprintf(tw, "\t%s", text)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func anyViaSwitch(pairs []Pair) bool {
	for _, p := range pairs {
		if p.ViaNVSwitch {
			return true
		}
	}
	return false
}

func allProblems(inv Inventory) []string {
	var out []string
	for _, p := range inv.System.Problems {
		out = append(out, "system: "+p)
	}
	for _, d := range inv.Devices {
		for _, p := range d.Problems {
			out = append(out, fmt.Sprintf("GPU %d: %s", d.Index, p))
		}
	}
	for _, pair := range inv.Pairs {
		for _, p := range pair.Problems {
			out = append(out, fmt.Sprintf("GPU %d-%d: %s", pair.A, pair.B, p))
		}
	}
	return out
}

func clockTriple(c Clocks) string {
	return strings.Join([]string{c.CurrentMHz.String(), c.MaxMHz.String(), c.ApplicationMHz.String()}, "/")
}

func mib(b Maybe[uint64]) string {
	if !b.Valid {
		return NotAvailable
	}
	return strconv.FormatUint(b.Value>>20, 10) + " MiB"
}

func watts(mw Maybe[uint32]) string {
	if !mw.Valid {
		return NotAvailable
	}
	return strconv.FormatFloat(float64(mw.Value)/1000, 'f', -1, 64) + " W"
}
