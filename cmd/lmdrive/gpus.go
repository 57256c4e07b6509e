package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/lmdrive/lmdrive/cuda"
	"github.com/lmdrive/lmdrive/cuda/nvml"
)

func gpusCommand() *cli.Command {
	return &cli.Command{
		Name:  "gpus",
		Usage: "describe the GPUs, driver and NVLink/P2P topology as NVML reports them",
		Description: "Prints each GPU's name, UUID, PCI bus ID, memory, clocks, power limits, ECC, MIG and\n" +
			"persistence modes and PCIe link, the driver, CUDA driver and NVML versions, and the\n" +
			"NVLink/PCIe topology and peer-to-peer access between every pair of GPUs.\n" +
			"Readings a GPU does not support show as n/a (null in JSON). See docs/gpus.md.",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: gpusAction,
	}
}

func gpusAction(c *cli.Context) (err error) {
	tel, err := nvml.Open()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := tel.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	inv, err := cuda.ReadInventory(tel)
	if errors.Is(err, cuda.ErrNoGPUs) {
		return fmt.Errorf("driver %s is loaded, but %w", inv.System.DriverVersion, err)
	}
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(inv)
	}
	return cuda.WriteInventory(c.App.Writer, inv)
}
