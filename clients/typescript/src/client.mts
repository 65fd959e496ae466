/**
 * The Boogu Image API client for TypeScript.
 *
 * The client is openapi-fetch typed by the types that openapi-typescript generates from
 * openapi.yaml (`make clients` writes them to build/clients/typescript/schema.d.ts): every path,
 * parameter, request body and answer is checked against the contract at compile time. This file
 * adds only what the contract cannot say: the key header, polling, Retry-After, and downloads.
 */
import type { Client } from "openapi-fetch";
import createClient from "openapi-fetch";

import type { components, paths } from "./schema.js";

export type { components, operations, paths, webhooks } from "./schema.js";

export type TextToImageRequest = components["schemas"]["TextToImageRequest"];
export type ImageEditRequest = components["schemas"]["ImageEditRequest"];
export type QueuedRequest = components["schemas"]["QueuedRequest"];
export type RequestStatus = components["schemas"]["RequestStatus"];
export type Status = components["schemas"]["Status"];
export type ErrorResponse = components["schemas"]["ErrorResponse"];

export type BooguClient = Client<paths>;

/** The header that carries the subscription key (`components.securitySchemes.subscriptionKey`). */
export const KEY_HEADER = "Ocp-Apim-Subscription-Key";

/** The statuses a request ends in; the gateway changes it no more after one of them. */
export const FINISHED: readonly Status[] = ["COMPLETED", "FAILED", "ERROR"];

export function createBooguClient(baseUrl: string, apiKey: string): BooguClient {
  return createClient<paths>({ baseUrl, headers: { [KEY_HEADER]: apiKey } });
}

/** An error answer of the gateway: its status, its `{error, message}` body and any Retry-After. */
export class BooguApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorResponse | undefined,
    readonly retryAfter: number | undefined,
  ) {
    super(`${status} ${body?.error ?? "(no body)"}: ${body?.message ?? ""}`.trim());
    this.name = "BooguApiError";
  }
}

/** Seconds from a `Retry-After` header (the gateway sends whole seconds), if there is one. */
export function retryAfterSeconds(response: Response): number | undefined {
  const header = response.headers.get("retry-after");
  if (header === null || !/^\d+$/.test(header.trim())) {
    return undefined;
  }
  return Number(header.trim());
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface WaitOptions {
  /** Pause between two polls, in milliseconds (the reference suggests 5-10 s in production). */
  intervalMs?: number;
  /** Give up after this long, in milliseconds. */
  timeoutMs?: number;
  /** Called with the seconds to wait when a poll is answered 429. */
  onThrottled?: (seconds: number) => void;
}

/**
 * Poll `get_request_status` until the request is COMPLETED, FAILED or ERROR. A `429` waits
 * `Retry-After` seconds and polls again; any other error answer throws a `BooguApiError`.
 */
export async function waitUntilFinished(
  client: BooguClient,
  requestId: string,
  { intervalMs = 5000, timeoutMs = 600_000, onThrottled }: WaitOptions = {},
): Promise<RequestStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { data, error, response } = await client.GET("/v2/requests/status/{request_id}", {
      params: { path: { request_id: requestId } },
    });
    let pause = intervalMs;
    if (data !== undefined) {
      if (FINISHED.includes(data.status)) {
        return data;
      }
    } else if (response.status === 429) {
      const seconds = retryAfterSeconds(response) ?? 1;
      onThrottled?.(seconds);
      pause = seconds * 1000;
    } else {
      throw new BooguApiError(response.status, error, retryAfterSeconds(response));
    }
    if (Date.now() + pause > deadline) {
      throw new Error(`request ${requestId} did not finish within ${timeoutMs} ms`);
    }
    await sleep(pause);
  }
}

/** Download one of `output.media_url`: an http(s) URL, or a data URI in `sync_mode`. */
export async function downloadMedia(url: string): Promise<{ bytes: Uint8Array; contentType: string }> {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`GET ${url} answered ${response.status}`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  return { bytes, contentType: response.headers.get("content-type") ?? "" };
}
