#include "lmdrive_shim/config.h"

#include <climits>
#include <functional>
#include <map>

#include "lmdrive_shim/json.h"
#include "lmdrive_shim/util.h"

namespace lmdrive::shim {
namespace {


const Json& expect(const Json& v, Json::Kind k, const std::string& key) {
  if (v.kind() != k) {
    invalid(strf("config key \"%s\": expected %s, got %s", key.c_str(), Json::kind_name(k),
             Json::kind_name(v.kind())));
  }
  return v;
}

int get_int(const Json& v, const std::string& key, int64_t lo, int64_t hi) {
  expect(v, Json::Kind::Number, key);
  if (!v.is_integer()) invalid("config key \"" + key + "\": expected an integer");
  int64_t x = 0;
  if (!v.to_i64(&x) || x < lo || x > hi) {
    invalid(strf("config key \"%s\": %s is out of range [%lld, %lld]", key.c_str(), v.as_string().c_str(),
             (long long)lo, (long long)hi));
  }
  return static_cast<int>(x);
}

float get_float(const Json& v, const std::string& key) {
  expect(v, Json::Kind::Number, key);
  return static_cast<float>(v.as_double());
}

std::string get_string(const Json& v, const std::string& key) {
  return expect(v, Json::Kind::String, key).as_string();
}

bool get_bool(const Json& v, const std::string& key) {
  return expect(v, Json::Kind::Bool, key).as_bool();
}

std::vector<int> get_int_list(const Json& v, const std::string& key, int64_t lo, int64_t hi) {
  std::vector<int> out;
  if (v.is_number()) {  // a single id is accepted as a one-element list
    out.push_back(get_int(v, key, lo, hi));
    return out;
  }
  expect(v, Json::Kind::Array, key);
  for (const Json& item : v.items()) out.push_back(get_int(item, key + "[]", lo, hi));
  return out;
}

using Handler = std::function<void(const Json&, const std::string&)>;

// Applies one handler per key; an unknown key is an error that lists the
// accepted ones, so a typo never silently falls back to a default.
void walk(const std::string& json, const char* engine, const std::map<std::string, Handler>& handlers) {
  Json doc = Json::parse(json, std::string(engine) + " config");
  if (!doc.is_object()) invalid(std::string(engine) + " config: expected a JSON object");
  for (const auto& kv : doc.members()) {
    auto it = handlers.find(kv.first);
    if (it == handlers.end()) {
      std::string known;
      for (const auto& h : handlers) {
        if (!known.empty()) known += ", ";
        known += h.first;
      }
      invalid(strf("%s config: unknown key \"%s\" (accepted: %s)", engine, kv.first.c_str(), known.c_str()));
    }
    if (kv.second.is_null()) continue;  // null means "use the default"
    it->second(kv.second, kv.first);
  }
}

const char* const kLogLevels[] = {"error", "warning", "info", "debug", "verbose", "trace"};

std::string check_log_level(const std::string& v, const std::string& key) {
  for (const char* l : kLogLevels) {
    if (v == l) return v;
  }
  invalid("config key \"" + key + "\": expected one of error, warning, info, debug, verbose, trace");
}

}  // namespace

TrtConfig parse_trt_config(const std::string& json) {
  TrtConfig c;
  std::map<std::string, Handler> h;
  auto engine_dir = [&](const Json& v, const std::string& k) { c.engine_dir = get_string(v, k); };
  h["engine_dir"] = engine_dir;
  h["model"] = engine_dir;  // generic alias used by lmdrive's --model
  h["tp"] = [&](const Json& v, const std::string& k) { c.tp = get_int(v, k, 1, 64); };
  h["devices"] = [&](const Json& v, const std::string& k) { c.devices = get_int_list(v, k, 0, 1023); };
  h["comm_mode"] = [&](const Json& v, const std::string& k) {
    std::string m = get_string(v, k);
    if (m == "leader") c.comm_mode = TrtCommMode::Leader;
    else if (m == "orchestrator") c.comm_mode = TrtCommMode::Orchestrator;
    else invalid("config key \"comm_mode\": expected \"leader\" or \"orchestrator\", got \"" + m + "\"");
  };
  h["worker_path"] = [&](const Json& v, const std::string& k) { c.worker_path = get_string(v, k); };
  h["kv_cache_fraction"] = [&](const Json& v, const std::string& k) {
    c.kv_cache_fraction = get_float(v, k);
    if (!(c.kv_cache_fraction > 0.f && c.kv_cache_fraction <= 1.f)) {
      invalid("config key \"kv_cache_fraction\": expected a fraction in (0, 1]");
    }
  };
  h["enable_block_reuse"] = [&](const Json& v, const std::string& k) { c.enable_block_reuse = get_bool(v, k); };
  h["max_seq_len"] = [&](const Json& v, const std::string& k) { c.max_seq_len = get_int(v, k, 1, INT_MAX); };
  h["max_num_tokens"] = [&](const Json& v, const std::string& k) { c.max_num_tokens = get_int(v, k, 1, INT_MAX); };
  h["max_batch"] = [&](const Json& v, const std::string& k) { c.max_batch = get_int(v, k, 1, 65536); };
  h["enable_chunked_context"] = [&](const Json& v, const std::string& k) {
    c.enable_chunked_context = get_bool(v, k);
  };
  h["eos_ids"] = [&](const Json& v, const std::string& k) { c.eos_ids = get_int_list(v, k, 0, INT_MAX); };
  h["log_level"] = [&](const Json& v, const std::string& k) { c.log_level = check_log_level(get_string(v, k), k); };
  h["recv_poll_ms"] = [&](const Json& v, const std::string& k) { c.recv_poll_ms = get_int(v, k, 0, 1000); };
  walk(json, "trtllm", h);

  if (c.engine_dir.empty()) invalid("trtllm config: \"engine_dir\" is required (a trtllm-build output directory)");
  if (c.eos_ids.size() > LMD_MAX_IDS) invalid(strf("trtllm config: at most %d eos_ids", LMD_MAX_IDS));
  if (c.comm_mode == TrtCommMode::Leader && !c.worker_path.empty()) {
    invalid("trtllm config: \"worker_path\" applies to comm_mode \"orchestrator\" only");
  }
  return c;
}

namespace {

int int_at(const Json& doc, std::initializer_list<const char*> p, int dflt) {
  const Json* v = doc.path(p);
  int64_t x = 0;
  if (!v || !v->to_i64(&x) || x < INT_MIN || x > INT_MAX) return dflt;
  return static_cast<int>(x);
}

std::string normalise_dtype(const std::string& d) {
  if (d == "float16" || d == "fp16" || d == "half") return "fp16";
  if (d == "bfloat16" || d == "bf16") return "bf16";
  if (d == "float32" || d == "fp32") return "fp32";
  if (d == "fp8" || d == "float8") return "fp8";
  return d;
}

}  // namespace

TrtEngineFacts parse_trt_engine_config(const std::string& json_text) {
  Json doc = Json::parse(json_text, "engine config.json");
  if (!doc.is_object()) invalid("engine config.json: expected a JSON object");
  const Json* pre = doc.find("pretrained_config");
  const Json* build = doc.find("build_config");
  if (!pre || !build) {
    invalid("engine config.json has no pretrained_config/build_config: not a trtllm-build (TensorRT-LLM >= 0.9) "
        "engine directory");
  }
  TrtEngineFacts f;
  if (const Json* v = doc.find("version"); v && v->is_string()) f.built_by_version = v->as_string();
  f.vocab_size = int_at(*pre, {"vocab_size"}, 0);
  if (const Json* v = pre->find("dtype"); v && v->is_string()) f.dtype = normalise_dtype(v->as_string());
  f.tp = int_at(*pre, {"mapping", "tp_size"}, 1);
  f.pp = int_at(*pre, {"mapping", "pp_size"}, 1);
  f.max_input_len = int_at(*build, {"max_input_len"}, 0);
  f.max_seq_len = int_at(*build, {"max_seq_len"}, 0);
  f.max_batch_size = int_at(*build, {"max_batch_size"}, 0);
  f.max_num_tokens = int_at(*build, {"max_num_tokens"}, 0);
  f.tokens_per_block = int_at(*build, {"plugin_config", "tokens_per_block"}, 0);
  if (f.tokens_per_block == 0) f.tokens_per_block = int_at(*build, {"tokens_per_block"}, 0);
  if (f.tp < 1 || f.pp < 1) invalid("engine config.json: bad mapping tp_size/pp_size");
  return f;
}

int choose_trt_max_batch(std::optional<int> configured, int engine_max_batch_size) {
  if (!configured) return engine_max_batch_size > 0 ? engine_max_batch_size : 1;
  if (engine_max_batch_size > 0 && *configured > engine_max_batch_size) {
    invalid(strf("trtllm config: max_batch %d exceeds the engine's max_batch_size %d; rebuild it with "
                 "trtllm-build --max_batch_size %d or ask for at most %d",
                 *configured, engine_max_batch_size, *configured, engine_max_batch_size));
  }
  return *configured;
}

TmConfig parse_tm_config(const std::string& json) {
  TmConfig c;
  std::map<std::string, Handler> h;
  auto model_dir = [&](const Json& v, const std::string& k) { c.model_dir = get_string(v, k); };
  h["model_dir"] = model_dir;
  h["model"] = model_dir;
  h["tp"] = [&](const Json& v, const std::string& k) { c.tp = get_int(v, k, 1, 64); };
  h["devices"] = [&](const Json& v, const std::string& k) { c.devices = get_int_list(v, k, 0, 1023); };
  h["session_len"] = [&](const Json& v, const std::string& k) { c.session_len = get_int(v, k, 2, INT_MAX); };
  h["cache_max_entry_count"] = [&](const Json& v, const std::string& k) {
    c.cache_max_entry_count = get_float(v, k);
    if (!(c.cache_max_entry_count > 0.f)) invalid("config key \"cache_max_entry_count\": must be > 0");
  };
  h["eos_ids"] = [&](const Json& v, const std::string& k) { c.eos_ids = get_int_list(v, k, 0, INT_MAX); };
  h["data_type"] = [&](const Json& v, const std::string& k) {
    std::string d = get_string(v, k);
    if (d == "float16" || d == "half") d = "fp16";
    if (d == "bfloat16") d = "bf16";
    if (d != "auto" && d != "fp16" && d != "bf16") {
      invalid("config key \"data_type\": expected \"auto\", \"fp16\" or \"bf16\", got \"" + d + "\"");
    }
    c.data_type = d;
  };
  h["max_prefill_token_num"] = [&](const Json& v, const std::string& k) {
    c.max_prefill_token_num = get_int(v, k, 1, INT_MAX);
  };
  h["max_batch"] = [&](const Json& v, const std::string& k) { c.max_batch = get_int(v, k, 1, 65536); };
  h["communicator"] = [&](const Json& v, const std::string& k) {
    c.communicator = get_string(v, k);
    if (c.communicator != "nccl" && c.communicator != "native") {
      invalid("config key \"communicator\": expected \"nccl\" or \"native\"");
    }
  };
  h["enable_prefix_caching"] = [&](const Json& v, const std::string& k) {
    c.enable_prefix_caching = get_bool(v, k);
  };
  h["log_level"] = [&](const Json& v, const std::string& k) { c.log_level = check_log_level(get_string(v, k), k); };
  walk(json, "turbomind", h);

  if (c.model_dir.empty()) {
    invalid("turbomind config: \"model_dir\" is required (a workspace written by `lmdeploy convert`)");
  }
  if (c.eos_ids.size() > LMD_MAX_IDS) invalid(strf("turbomind config: at most %d eos_ids", LMD_MAX_IDS));
  return c;
}

SessionLenChoice choose_session_len(std::optional<int> configured, int workspace_session_len,
                                    int max_position_embeddings) {
  SessionLenChoice c;
  if (configured) {
    c.value = *configured;
    c.source = strf("session_len=%d (lmdrive config)", c.value);
  } else if (workspace_session_len > 0) {
    c.value = workspace_session_len;
    c.source = strf("session_len=%d (workspace config.yaml)", c.value);
  } else if (max_position_embeddings > 0) {
    c.value = max_position_embeddings;
    c.source = strf("session_len=%d (max_position_embeddings)", c.value);
  } else {
    invalid("turbomind: no session_len in the config, the workspace or max_position_embeddings; set \"session_len\"");
  }
  return c;
}

std::string choose_tm_dtype(const std::string& config_data_type, const std::string& weight_type) {
  if (config_data_type == "fp16" || config_data_type == "bf16") return config_data_type;
  // TurboMind 0.7.3 instantiates half for fp16 and for int4/int8 (AWQ) weights.
  if (weight_type == "bf16" || weight_type == "bfloat16") return "bf16";
  if (weight_type == "fp16" || weight_type == "float16" || weight_type == "half" || weight_type == "int4" ||
      weight_type == "int8") {
    return "fp16";
  }
  invalid("turbomind: workspace weight_type \"" + weight_type + "\" is not supported by this shim (fp16, bf16, int4)");
}

std::vector<int> resolve_devices(const std::vector<int>& devices, int tp, bool must_be_identity,
                                 const char* engine) {
  if (devices.empty()) {
    std::vector<int> out;
    for (int i = 0; i < tp; ++i) out.push_back(i);
    return out;
  }
  if (static_cast<int>(devices.size()) != tp) {
    invalid(strf("%s: %zu devices given for tp=%d; give exactly one device per rank", engine, devices.size(), tp));
  }
  for (size_t i = 0; i < devices.size(); ++i) {
    for (size_t j = i + 1; j < devices.size(); ++j) {
      if (devices[i] == devices[j]) invalid(strf("%s: device %d listed twice", engine, devices[i]));
    }
    if (must_be_identity && devices[i] != static_cast<int>(i)) {
      invalid(strf("%s: this engine always uses CUDA devices 0..tp-1; select GPUs with CUDA_VISIBLE_DEVICES "
               "instead of \"devices\"",
               engine));
    }
  }
  return devices;
}

}  // namespace lmdrive::shim
