import enum


class RequestOutputKind(enum.Enum):
    CUMULATIVE = 0
    DELTA = 1
    FINAL_ONLY = 2


class SamplingParams:
    """vLLM's defaults: max_tokens 16, temperature 1.0, cumulative outputs."""

    def __init__(self, n=1, temperature=1.0, top_p=1.0, top_k=0, seed=None, stop_token_ids=None, ignore_eos=False,
                 max_tokens=16, min_tokens=0, logprobs=None, detokenize=True, output_kind=RequestOutputKind.CUMULATIVE):
        self.__dict__.update(dict(n=n, temperature=temperature, top_p=top_p, top_k=top_k, seed=seed,
                                  stop_token_ids=list(stop_token_ids or []), ignore_eos=ignore_eos, max_tokens=max_tokens,
                                  min_tokens=min_tokens, logprobs=logprobs, detokenize=detokenize, output_kind=output_kind))
