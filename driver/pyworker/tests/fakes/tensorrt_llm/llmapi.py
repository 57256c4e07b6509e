class KvCacheConfig:
    def __init__(self, enable_block_reuse=True, free_gpu_memory_fraction=None):
        self.enable_block_reuse = enable_block_reuse
        self.free_gpu_memory_fraction = free_gpu_memory_fraction
