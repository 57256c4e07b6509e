package doctor

import "slices"

// Engines lists every engine the doctor knows: the native ones (a shim
// library each) first, then the ones a Python worker drives.
func Engines() []string {
	return append(nativeEngines(), "hf", "vllm", "lmdeploy", "trtllm-py")
}

// nativeEngines are loaded from liblmdrive_<name>.so.
func nativeEngines() []string { return []string{"ref", "trtllm", "turbomind"} }

// usesGPU says whether an engine needs the NVIDIA stack on this device:
// ref and hf run on the CPU unless asked for cuda; the others only on GPUs.
func usesGPU(engine, device string) bool {
	switch engine {
	case "ref", "hf":
		return device == "cuda"
	}
	return true
}

// pythonModules are the Python packages an engine's worker imports, PyTorch
// first (it carries the CUDA build the others use).
func pythonModules(engine string) []string {
	switch engine {
	case "hf":
		return []string{"torch", "transformers"}
	case "vllm":
		return []string{"torch", "vllm"}
	case "lmdeploy":
		return []string{"torch", "lmdeploy"}
	case "trtllm-py":
		return []string{"torch", "tensorrt_llm"}
	}
	return nil
}

// allPythonModules are the packages of every Python engine, each once.
func allPythonModules() []string {
	var out []string
	for _, e := range Engines() {
		for _, m := range pythonModules(e) {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}

// requirements maps a check ID to the chosen engines that need it.
type requirements map[string][]string

func requirementsOf(o Options) requirements {
	req := requirements{}
	need := func(id, engine string) {
		if !slices.Contains(req[id], engine) {
			req[id] = append(req[id], engine)
		}
	}
	for _, e := range o.Engines {
		// lmdrive tokenizes prompts itself for every engine.
		need("memory", e)
		need("disk", e)
		need("tokenizer", e)
		// NCCL is not required by name: engines that use it link it and find
		// it through their own RUNPATH, which their load checks cover.
		if usesGPU(e, o.Device) {
			need("libcuda", e)
			need("gpus", e)
		}
		if slices.Contains(nativeEngines(), e) {
			need("engine."+e, e)
		}
		if e == "ref" && o.Device == "cuda" {
			need("engine.ref.cuda", e)
		}
		if mods := pythonModules(e); len(mods) > 0 {
			need("python", e)
			for _, m := range mods {
				need("python."+m, e)
			}
		}
	}
	return req
}

func (r requirements) neededBy(id string) []string { return r[id] }

// gpuEngines are the chosen engines that need GPUs.
func gpuEngines(o Options) []string {
	var out []string
	for _, e := range o.Engines {
		if usesGPU(e, o.Device) {
			out = append(out, e)
		}
	}
	return out
}
