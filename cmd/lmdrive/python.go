package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/lmdrive/lmdrive/driver"
	"github.com/urfave/cli/v2"
)

// pythonFlag picks the interpreter of the Python engines (hf, vllm,
// lmdeploy, trtllm-py).
func pythonFlag() cli.Flag {
	return &cli.StringFlag{Name: "python", EnvVars: []string{"LMDRIVE_PYTHON"},
		Usage: "Python interpreter of the Python engines (hf, vllm, lmdeploy, trtllm-py); default python3 on PATH"}
}

// startPython starts a Python engine's worker with the command's timeouts.
func startPython(c *cli.Context, name string, cfg json.RawMessage, log io.Writer) (driver.Engine, error) {
	if c.Bool("in-process") {
		return nil, fmt.Errorf("--in-process loads engine libraries; engine %s runs in a Python worker process", name)
	}
	ro := driver.RunnerOptions{Log: log}
	if c.IsSet("load-timeout") || c.Duration("load-timeout") > 0 {
		ro.LoadTimeout, ro.PrefillTimeout, ro.StallTimeout = c.Duration("load-timeout"), c.Duration("prefill-timeout"), c.Duration("stall-timeout")
	}
	return driver.StartPython(c.Context, driver.PythonOptions{Interpreter: c.String("python"), Engine: name, Config: cfg, Runner: ro})
}

// pythonEngineConfig adds the flags a Python engine understands to its config.
func pythonEngineConfig(c *cli.Context, name string, cfg map[string]any) {
	cfg["tp"] = c.Int("tp")
	if name != "hf" {
		return
	}
	cfg["seed"] = c.Uint64("seed")
	cfg["device"] = c.String("device")
	if c.Int("threads") > 0 {
		cfg["threads"] = c.Int("threads")
	}
	if p := c.String("precision"); p != "" {
		cfg["precision"] = p
	}
}
