/**
 * Smoke test of the generated TypeScript client against a live gateway (the mock, in CI):
 * both submit operations polled to COMPLETED and their images downloaded, one 402 and one 429.
 *
 * Run by tools/client_smoke.py, which starts the mock and sets it up through its admin API:
 *   BOOGU_BASE_URL       the gateway's base URL
 *   BOOGU_API_KEY        a key with money and room under the rate limit (default: test-key)
 *   BOOGU_BROKE_KEY      a key whose balance is 0, for the 402
 *   BOOGU_THROTTLED_KEY  a key of its own under the gateway's rate limit, for the 429
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  createBooguClient,
  downloadMedia,
  type ErrorResponse,
  type QueuedRequest,
  type RequestStatus,
  retryAfterSeconds,
  sleep,
  waitUntilFinished,
} from "./client.mjs";
import { jpegSize, pngSize } from "./images.mjs";

function env(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (!value) {
    throw new Error(`set ${name} (tools/client_smoke.py does)`);
  }
  return value;
}

const BASE_URL = env("BOOGU_BASE_URL");
const API_KEY = env("BOOGU_API_KEY", "test-key");
const BROKE_KEY = env("BOOGU_BROKE_KEY");
const THROTTLED_KEY = env("BOOGU_THROTTLED_KEY");
const POLL = { intervalMs: 150, timeoutMs: 30_000 };

/** The QueuedRequest of a 202, or a failed assertion that says what came instead. */
function queued(result: { data?: unknown; error?: unknown; response: Response }): QueuedRequest {
  const { data, error, response } = result;
  assert.equal(response.status, 202, `expected 202, got ${response.status}: ${JSON.stringify(error)}`);
  const body = data as QueuedRequest;
  assert.equal(body.status, "QUEUED");
  assert.match(body.request_id, /^[a-z-]+_[0-9a-f-]{36}$/);
  assert.equal(body.polling_url, `${BASE_URL}/v2/requests/status/${body.request_id}`);
  return body;
}

function completed(status: RequestStatus, modelId: string): string[] {
  assert.equal(status.status, "COMPLETED", `ended ${status.status}: ${status.error}`);
  assert.equal(status.model_id, modelId);
  assert.equal(status.error, null);
  assert.ok(status.output, "a COMPLETED request has an output");
  assert.ok(status.output.media_url.length > 0, "output.media_url is empty");
  return status.output.media_url;
}

describe("TypeScript client against the gateway", () => {
  const client = createBooguClient(BASE_URL, API_KEY);
  const state: { textToImage?: QueuedRequest; imageUrl?: string; edit?: QueuedRequest } = {};

  test("submit_text_to_image answers 202 QUEUED", async () => {
    const result = await client.POST("/boogu-image/v1/boogu-image-request", {
      body: {
        prompt: "A lighthouse on a cliff in a storm, oil painting",
        image_size: { width: 320, height: 240 },
        num_inference_steps: 30,
        output_format: "jpeg",
        seed: 7,
      },
    });
    state.textToImage = queued(result);
    assert.match(state.textToImage.request_id, /^boogu-image_/);
  });

  test("get_request_status polls the text-to-image request to COMPLETED; its JPEG downloads", async () => {
    assert.ok(state.textToImage, "needs the submit above");
    const status = await waitUntilFinished(client, state.textToImage.request_id, POLL);
    const [url] = completed(status, "boogu-image");
    assert.ok(url);
    assert.equal(status.output?.media_type, "image/jpeg");
    const { bytes, contentType } = await downloadMedia(url);
    assert.equal(contentType, "image/jpeg");
    assert.deepEqual(jpegSize(bytes), [320, 240]);
    state.imageUrl = url;
  });

  test("submit_image_edit of that image answers 202 QUEUED", async () => {
    assert.ok(state.imageUrl, "needs the downloaded image above");
    const result = await client.POST("/boogu-image-edit/v1/boogu-image-edit-request", {
      body: {
        prompt: "Make it look like a pencil sketch",
        image_url: state.imageUrl,
        output_format: "png",
      },
    });
    state.edit = queued(result);
    assert.match(state.edit.request_id, /^boogu-image-edit_/);
  });

  test("get_request_status polls the edit to COMPLETED; its PNG downloads", async () => {
    assert.ok(state.edit, "needs the edit submit above");
    const status = await waitUntilFinished(client, state.edit.request_id, POLL);
    const urls = completed(status, "boogu-image-edit");
    assert.equal(status.output?.media_type, "image/png");
    for (const url of urls) {
      const { bytes, contentType } = await downloadMedia(url);
      assert.equal(contentType, "image/png");
      const [width, height] = pngSize(bytes);
      assert.ok(width > 0 && height > 0, `a ${width}×${height} PNG`);
    }
  });

  test("402: a key without balance gets Insufficient Balance and no request", async () => {
    const broke = createBooguClient(BASE_URL, BROKE_KEY);
    const { data, error, response } = await broke.POST("/boogu-image/v1/boogu-image-request", {
      body: { prompt: "a red fox" },
    });
    assert.equal(response.status, 402);
    assert.equal(data, undefined);
    assert.ok(error, "a 402 has an ErrorResponse body");
    assert.equal(error.error, "Insufficient Balance");
    assert.equal(typeof error.message, "string");
  });

  test("429: polling too fast gets Too Many Requests with Retry-After; waiting it out succeeds", async () => {
    const throttled = createBooguClient(BASE_URL, THROTTLED_KEY);
    const submitted = queued(
      await throttled.POST("/boogu-image/v1/boogu-image-request", { body: { prompt: "a red fox" } }),
    );
    const request = { params: { path: { request_id: submitted.request_id } } };
    let rejected: { error: ErrorResponse | undefined; response: Response } | undefined;
    for (let attempt = 0; attempt < 200 && rejected === undefined; attempt++) {
      const { error, response } = await throttled.GET("/v2/requests/status/{request_id}", request);
      if (response.status === 429) {
        rejected = { error, response };
      } else {
        assert.equal(response.status, 200, `expected 200 or 429, got ${response.status}`);
      }
    }
    assert.ok(rejected, "200 status polls in a row were never answered 429: is the rate limit set?");
    const retryAfter = retryAfterSeconds(rejected.response);
    assert.ok(retryAfter !== undefined && retryAfter >= 0, "a 429 carries a Retry-After in seconds");
    assert.ok(rejected.error, "a 429 has an ErrorResponse body");
    // The mock adds fields the spec does not list (`extra_fields`): the body is read all the same.
    assert.equal(typeof rejected.error.message, "string");
    assert.equal(rejected.error.error, "Too Many Requests");

    await sleep(retryAfter * 1000);
    const retried = await throttled.GET("/v2/requests/status/{request_id}", request);
    assert.equal(retried.response.status, 200, "after Retry-After seconds the same call goes through");
    completed(await waitUntilFinished(throttled, submitted.request_id, POLL), "boogu-image");
  });
});
