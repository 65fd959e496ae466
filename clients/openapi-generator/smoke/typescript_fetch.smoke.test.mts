/**
 * Smoke test of the OpenAPI Generator `typescript-fetch` client against a live gateway (the mock):
 * both submit operations polled to COMPLETED and their images downloaded, one 402 and one 429.
 *
 * Run by tools/client_smoke.py, which starts the mock, sets it up through its admin API and passes
 * BOOGU_BASE_URL, BOOGU_API_KEY, BOOGU_BROKE_KEY (balance 0) and BOOGU_THROTTLED_KEY (its own
 * rate-limit bucket).
 *
 * The generator types each operation by its first success answer; the spec makes that type
 * (`SubmitResult`) one that parses both the `202` ticket and the `200` of `sync_mode`, so the typed
 * call is all a user needs. The mock adds fields the spec does not list to every answer
 * (`extra_fields`), and the client reads them all the same.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";

import {
  Configuration,
  ErrorResponseFromJSON,
  ImageEditApi,
  type RequestStatus,
  ResponseError,
  StatusApi,
  type SubmitResult,
  TextToImageApi,
} from "../../../build/clients/openapi-generator/typescript-fetch/src/index.js";
import { jpegSize, pngSize } from "../../typescript/src/images.mjs";

function env(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (!value) throw new Error(`set ${name} (tools/client_smoke.py does)`);
  return value;
}

const BASE_URL = env("BOOGU_BASE_URL");
const FINISHED = new Set(["COMPLETED", "FAILED", "ERROR"]);
const POLL_MS = 150;
const WAIT_MS = 30_000;

/** The generated APIs, sending `key` in Ocp-Apim-Subscription-Key (the spec's security scheme). */
function apis(key: string) {
  const configuration = new Configuration({ basePath: BASE_URL, apiKey: key });
  return {
    textToImage: new TextToImageApi(configuration),
    imageEdit: new ImageEditApi(configuration),
    status: new StatusApi(configuration),
  };
}

/** The typed result of a submit answered 202: a ticket to poll. */
async function queued(answer: Promise<SubmitResult>): Promise<SubmitResult> {
  const body = await answer;
  assert.equal(body.status, "QUEUED");
  assert.equal(body.pollingUrl, `${BASE_URL}/v2/requests/status/${body.requestId}`);
  return body;
}

/** The ResponseError that `call` throws, with its status and parsed `{error, message}` body. */
async function rejection(call: Promise<unknown>) {
  const error = await call.then(
    () => assert.fail("expected an error answer"),
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof ResponseError, `expected a ResponseError, got ${String(error)}`);
  const body = ErrorResponseFromJSON(await error.response.json());
  return { response: error.response, body };
}

async function waitUntilFinished(status: StatusApi, requestId: string): Promise<RequestStatus> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const current = await status.getRequestStatus({ requestId });
    if (FINISHED.has(current.status)) return current;
    assert.ok(Date.now() < deadline, `${requestId} still ${current.status} after ${WAIT_MS} ms`);
    await sleep(POLL_MS);
  }
}

async function download(url: string): Promise<{ bytes: Uint8Array; contentType: string | null }> {
  const response = await fetch(url);
  assert.equal(response.status, 200, `GET ${url}`);
  return { bytes: new Uint8Array(await response.arrayBuffer()), contentType: response.headers.get("content-type") };
}

function mediaOf(status: RequestStatus, modelId: string): string[] {
  assert.equal(status.status, "COMPLETED", `ended ${status.status}: ${status.error}`);
  assert.equal(status.modelId, modelId);
  assert.ok(status.output && status.output.mediaUrl.length > 0, "a COMPLETED request has media");
  return status.output.mediaUrl;
}

describe("OpenAPI Generator typescript-fetch client against the gateway", () => {
  const client = apis(env("BOOGU_API_KEY", "test-key"));
  const state: { textToImage?: SubmitResult; imageUrl?: string; edit?: SubmitResult } = {};

  test("submitTextToImage answers 202 QUEUED", async () => {
    state.textToImage = await queued(
      client.textToImage.submitTextToImage({
        textToImageRequest: {
          prompt: "A lighthouse on a cliff in a storm, oil painting",
          imageSize: { width: 320, height: 240 },
          outputFormat: "jpeg",
          seed: 7,
        },
      }),
    );
    assert.match(state.textToImage.requestId, /^boogu-image_/);
  });

  test("getRequestStatus polls it to COMPLETED; its JPEG downloads and decodes", async () => {
    assert.ok(state.textToImage, "needs the submit above");
    const status = await waitUntilFinished(client.status, state.textToImage.requestId);
    const [url] = mediaOf(status, "boogu-image");
    assert.ok(url);
    const { bytes, contentType } = await download(url);
    assert.equal(contentType, "image/jpeg");
    assert.deepEqual(jpegSize(bytes), [320, 240]);
    state.imageUrl = url;
  });

  test("submitImageEdit of that image answers 202 QUEUED", async () => {
    assert.ok(state.imageUrl, "needs the downloaded image above");
    state.edit = await queued(
      client.imageEdit.submitImageEdit({
        imageEditRequest: { prompt: "Make it look like a pencil sketch", imageUrl: state.imageUrl, outputFormat: "png" },
      }),
    );
    assert.match(state.edit.requestId, /^boogu-image-edit_/);
  });

  test("getRequestStatus polls the edit to COMPLETED; its PNG downloads and decodes", async () => {
    assert.ok(state.edit, "needs the edit submit above");
    const status = await waitUntilFinished(client.status, state.edit.requestId);
    for (const url of mediaOf(status, "boogu-image-edit")) {
      const { bytes, contentType } = await download(url);
      assert.equal(contentType, "image/png");
      const [width, height] = pngSize(bytes);
      assert.ok(width > 0 && height > 0, `a ${width}×${height} PNG`);
    }
  });

  test("sync_mode: the same typed submit reads the 200 with the finished status and inline images", async () => {
    const finished = await client.textToImage.submitTextToImage({
      textToImageRequest: { prompt: "a red fox", imageSize: "square", syncMode: true },
    });
    assert.equal(finished.status, "COMPLETED");
    assert.equal(finished.modelId, "boogu-image");
    assert.match(finished.output?.mediaUrl[0] ?? "", /^data:image\/jpeg;base64,/);
  });

  test("402: a key without balance gets Insufficient Balance", async () => {
    const broke = apis(env("BOOGU_BROKE_KEY"));
    const { response, body } = await rejection(
      broke.textToImage.submitTextToImage({ textToImageRequest: { prompt: "a red fox" } }),
    );
    assert.equal(response.status, 402);
    assert.equal(body.error, "Insufficient Balance");
  });

  test("429: polling too fast gets Too Many Requests with Retry-After; waiting it out succeeds", async () => {
    const throttled = apis(env("BOOGU_THROTTLED_KEY"));
    const submitted = await queued(
      throttled.textToImage.submitTextToImage({ textToImageRequest: { prompt: "a red fox" } }),
    );
    let limited: Awaited<ReturnType<typeof rejection>> | undefined;
    for (let attempt = 0; attempt < 200 && limited === undefined; attempt++) {
      try {
        await throttled.status.getRequestStatus({ requestId: submitted.requestId });
      } catch (error) {
        assert.ok(error instanceof ResponseError && error.response.status === 429, String(error));
        limited = await rejection(Promise.reject(error));
      }
    }
    assert.ok(limited, "200 status polls in a row were never answered 429: is the rate limit set?");
    assert.equal(limited.body.error, "Too Many Requests");
    const retryAfter = Number(limited.response.headers.get("retry-after"));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 0, "a 429 carries Retry-After in seconds");
    await sleep(retryAfter * 1000);
    mediaOf(await waitUntilFinished(throttled.status, submitted.requestId), "boogu-image");
  });
});
