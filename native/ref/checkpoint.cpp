#include "checkpoint.h"

#include <map>
#include <unordered_map>

#include "kit.h"
#include "safetensors.h"

namespace lmdref {

namespace {

class CheckpointSource : public WeightSource {
 public:
  explicit CheckpointSource(const std::string& dir) {
    const std::string single = join_path(dir, "model.safetensors");
    const std::string index = join_path(dir, "model.safetensors.index.json");
    if (file_exists(single)) {
      files_.push_back(std::make_unique<SafetensorsFile>(single));
      for (const SafeTensor& t : files_[0]->tensors()) where_[t.name] = {files_[0].get(), &t};
    } else if (file_exists(index)) {
      open_shards(dir, index);
    } else {
      invalid(dir + ": neither model.safetensors nor model.safetensors.index.json found");
    }
  }

  TensorInfo info(const std::string& name) const override {
    TensorInfo ti;
    auto it = where_.find(name);
    if (it == where_.end()) return ti;
    ti.found = true;
    ti.shape = it->second.tensor->shape;
    ti.dtype = it->second.tensor->dtype;
    return ti;
  }

  void read(const std::string& name, uint64_t first, uint64_t count, float* out) const override {
    auto it = where_.find(name);
    if (it == where_.end()) invalid("checkpoint has no tensor \"" + name + "\"");
    const SafeTensor& t = *it->second.tensor;
    const size_t es = dtype_size(t.dtype);
    if (es == 0 || (t.end - t.begin) / es < first + count)
      invalid(it->second.file->path() + ": read past the end of tensor \"" + name + "\"");
    convert_to_f32(t.dtype, it->second.file->data(t) + first * es, count, out);
  }

 private:
  struct Location {
    const SafetensorsFile* file;
    const SafeTensor* tensor;
  };
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, Location> where_;

  void open_shards(const std::string& dir, const std::string& index) {
    const Json root = Json::parse(read_file(index), index);
    const Json* map = root.is_object() ? root.find("weight_map") : nullptr;
    if (!map || !map->is_object()) invalid(index + ": no \"weight_map\" object");
    std::map<std::string, SafetensorsFile*> by_name;
    for (const auto& [tensor, file] : map->members()) {
      if (!file.is_string()) invalid(index + ": weight_map values must be file names");
      const std::string& f = file.as_string();
      if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
        invalid(index + ": shard name \"" + f + "\" must be a file inside the checkpoint directory");
      auto it = by_name.find(f);
      if (it == by_name.end()) {
        files_.push_back(std::make_unique<SafetensorsFile>(join_path(dir, f)));
        it = by_name.emplace(f, files_.back().get()).first;
      }
      const SafeTensor* t = it->second->find(tensor);
      if (!t)
        invalid(index + ": tensor \"" + tensor + "\" is mapped to " + f +
                ", which does not hold it");
      where_[tensor] = {it->second, t};
    }
  }
};

}  // namespace

std::unique_ptr<WeightSource> open_checkpoint(const std::string& dir) {
  return std::make_unique<CheckpointSource>(dir);
}

}  // namespace lmdref
