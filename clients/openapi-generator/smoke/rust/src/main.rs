//! Smoke test of the Rust client that OpenAPI Generator 7.26.0 (`rust`, library `reqwest`)
//! generates from openapi.yaml, run against the mock gateway.
//!
//! It proves that the generated crate, built by cargo from the committed Cargo.lock and used
//! without hand edits, works against the gateway: the generated `Configuration.api_key` sends the
//! key; both submit operations queue jobs that `get_request_status` polls forward to COMPLETED;
//! their images download (JPEG and PNG, at the requested sizes); the one typed `SubmitResult`
//! parses both the 202 ticket and the 200 `sync_mode` answer; answers with fields the spec does
//! not know still parse; and 402, 400 and 429 come back as typed `Error::ResponseError` values
//! holding an `ErrorResponse`.
//!
//! Run from the repo root (tools/client_smoke.py does so against a fresh, prepared mock):
//!
//!     cargo build --locked --manifest-path clients/openapi-generator/smoke/rust/Cargo.toml \
//!         --target-dir build/clients/openapi-generator/rust-target
//!     BOOGU_BASE_URL=http://127.0.0.1:PORT BOOGU_API_KEY=test-key BOOGU_BROKE_KEY=smoke-broke \
//!         BOOGU_THROTTLED_KEY=smoke-throttled \
//!         build/clients/openapi-generator/rust-target/debug/boogu-rust-smoke
//!
//! The mock must have a rate limit of 10/s (burst 10), the broke key (balance 0), the throttled
//! key, and extra_fields {"progress": 0.5, "region": "eu-1"}. Prints `PASS <check>` or
//! `FAIL <check>: <reason>` for each check, all of them even after a failure, and exits 0 only
//! when every check passed.

use std::cell::Cell;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use boogu_openapi_client::apis::configuration::{ApiKey, Client, Configuration};
use boogu_openapi_client::apis::{
    image_edit_api, status_api, text_to_image_api, Error, ResponseContent,
};
use boogu_openapi_client::models::{
    image_edit_request, CustomImageSize, ErrorResponse, ImageEditRequest, ImageSize,
    ImageSizePreset, RequestStatus, Status, SubmitResult, TextToImageRequest,
};
use tokio::time::sleep;

const POLL_EVERY: Duration = Duration::from_millis(150);
const POLL_FOR: Duration = Duration::from_secs(30);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Status polls, without a pause, that must run into the throttled key's rate limit.
const THROTTLE_TRIES: usize = 200;
/// The generated client cannot show the `Retry-After` header: `ResponseContent` keeps the status
/// and the body of an error answer but drops its headers. So the wait after the 429 is the
/// smallest `Retry-After` the gateway sends (whole seconds, at least 1), long enough for a 10/s
/// bucket.
const RETRY_AFTER_FALLBACK: Duration = Duration::from_secs(1);
const TEXT_MODEL: &str = "boogu-image";
const NEEDS_FIRST_JOB: &str = "skipped: text_to_image polled no job to COMPLETED";

/// `return Err(reason)` from a check unless the condition holds.
macro_rules! ensure {
    ($condition:expr, $($reason:tt)+) => {
        if !$condition {
            return Err(format!($($reason)+));
        }
    };
}

type Check<T = ()> = Result<T, String>;

/// The gateway under test: one generated `Configuration` per key, sharing one HTTP client.
struct Gateway {
    base_url: String,
    api: Configuration,
    broke: Configuration,
    throttled: Configuration,
    /// Status answers the generated `RequestStatus` parsed (each carried the mock's extra fields).
    status_answers: Cell<usize>,
}

impl Gateway {
    fn from_env() -> Check<Gateway> {
        let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
        let base_url = env("BOOGU_BASE_URL")?.trim_end_matches('/').to_owned();
        let client = Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let configuration = |key: String| Configuration {
            base_path: base_url.clone(),
            client: client.clone(),
            api_key: Some(ApiKey { prefix: None, key }),
            ..Configuration::default()
        };
        Ok(Gateway {
            api: configuration(env("BOOGU_API_KEY")?),
            broke: configuration(env("BOOGU_BROKE_KEY")?),
            throttled: configuration(env("BOOGU_THROTTLED_KEY")?),
            base_url,
            status_answers: Cell::new(0),
        })
    }

    async fn status(
        &self,
        key: &Configuration,
        request_id: &str,
    ) -> Result<RequestStatus, Error<status_api::GetRequestStatusError>> {
        let answer = status_api::get_request_status(key, request_id).await?;
        self.status_answers.set(self.status_answers.get() + 1);
        Ok(answer)
    }

    /// Polls a job every POLL_EVERY until COMPLETED; FAILED, ERROR, an error or POLL_FOR fail.
    async fn poll_to_completed(&self, key: &Configuration, request_id: &str) -> Check<Polled> {
        let deadline = Instant::now() + POLL_FOR;
        let mut seen = Vec::new();
        loop {
            let answer = self
                .status(key, request_id)
                .await
                .map_err(|e| format!("get_request_status: {}", describe(e)))?;
            seen.push(answer.status);
            match answer.status {
                Status::Completed => return Ok(Polled { seen, last: answer }),
                Status::Failed | Status::Error => {
                    return Err(format!("job ended {}: {:?}", answer.status, answer.error))
                }
                Status::Queued | Status::Processing => {}
            }
            ensure!(
                Instant::now() < deadline,
                "{request_id} still {} after {POLL_FOR:?}",
                answer.status
            );
            sleep(POLL_EVERY).await;
        }
    }

    /// Plain GET of a media URL (media need no key), checked for 200 and the content type, and its
    /// bytes for the format's signature and the image size written in its header.
    async fn download_image(&self, url: &str, format: &ImageFormat, size: (u32, u32)) -> Check {
        let response = self
            .api
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        ensure!(
            response.status().as_u16() == 200,
            "GET {url}: HTTP {}",
            response.status()
        );
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        ensure!(
            content_type.split(';').next().unwrap_or("").trim() == format.media_type,
            "GET {url}: Content-Type {content_type:?}, expected {}",
            format.media_type
        );
        let data = response
            .bytes()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        ensure!(
            data.starts_with(format.magic),
            "not a {}: starts {:02X?}",
            format.media_type,
            &data[..data.len().min(8)]
        );
        let found = (format.size)(&data)
            .ok_or_else(|| format!("no size in the {} header", format.media_type))?;
        ensure!(
            found == size,
            "{} is {}x{}, expected {}x{}",
            format.media_type,
            found.0,
            found.1,
            size.0,
            size.1
        );
        Ok(())
    }
}

/// A job polled to COMPLETED: every status seen, in order, and the last answer.
struct Polled {
    seen: Vec<Status>,
    last: RequestStatus,
}

impl Polled {
    fn first_media_url(&self) -> Check<&str> {
        let output = self
            .last
            .output
            .as_ref()
            .ok_or("COMPLETED without output")?;
        output
            .media_url
            .first()
            .map(String::as_str)
            .ok_or_else(|| "output.media_url is empty".into())
    }
}

/// What identifies a downloaded image. The standard library decodes no image format, so the check
/// is the signature (JPEG: FF D8 FF; PNG: its 8 bytes) and the width and height in the header.
struct ImageFormat {
    media_type: &'static str,
    magic: &'static [u8],
    size: fn(&[u8]) -> Option<(u32, u32)>,
}

const JPEG: ImageFormat = ImageFormat {
    media_type: "image/jpeg",
    magic: &[0xFF, 0xD8, 0xFF],
    size: jpeg_size,
};
const PNG: ImageFormat = ImageFormat {
    media_type: "image/png",
    magic: b"\x89PNG\r\n\x1a\n",
    size: png_size,
};

/// Width and height from a JPEG's start-of-frame segment, found by walking the marker segments.
fn jpeg_size(data: &[u8]) -> Option<(u32, u32)> {
    let be16 = |at: usize| {
        Some(u32::from(u16::from_be_bytes(
            data.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    let mut at = 2; // after SOI
    loop {
        if *data.get(at)? != 0xFF {
            return None;
        }
        let marker = *data.get(at + 1)?;
        // SOF0..SOF15, less DHT (C4), JPG (C8) and DAC (CC): length, precision, height, width.
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            return Some((be16(at + 7)?, be16(at + 5)?));
        }
        at += 2 + usize::try_from(be16(at + 2)?).ok()?;
    }
}

/// Width and height from a PNG's IHDR chunk, the first after the signature.
fn png_size(data: &[u8]) -> Option<(u32, u32)> {
    let be32 = |at: usize| Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?));
    (data.get(12..16)? == b"IHDR").then_some(())?;
    Some((be32(16)?, be32(20)?))
}

/// The body of a generated error enum. The enums are `#[serde(untagged)]` and every variant holds
/// the same `ErrorResponse`, so serde fills the FIRST variant whatever the status was (a 402 body
/// arrives as `SubmitTextToImageError::Status400`): the variant's name means nothing. The real
/// status is `ResponseContent.status`; the body is taken from whichever variant holds it.
trait ErrorBody {
    fn body(&self) -> Option<&ErrorResponse>;
}

macro_rules! impl_error_body {
    ($($error:ty => [$($variant:ident),+];)+) => {$(
        impl ErrorBody for $error {
            fn body(&self) -> Option<&ErrorResponse> {
                match self {
                    $(Self::$variant(body))|+ => Some(body),
                    Self::UnknownValue(_) => None,
                }
            }
        }
    )+};
}

impl_error_body! {
    text_to_image_api::SubmitTextToImageError =>
        [Status400, Status401, Status402, Status403, Status413, Status415, Status429, Status500];
    image_edit_api::SubmitImageEditError =>
        [Status400, Status401, Status402, Status403, Status413, Status415, Status429, Status500];
    status_api::GetRequestStatusError => [Status401, Status403, Status404, Status429, Status500];
}

/// An error answer as the generated client reports it: HTTP status, typed body, raw body.
struct ApiError {
    status: u16,
    body: ErrorResponse,
    raw: String,
}

impl ApiError {
    fn expect(&self, status: u16) -> Check {
        ensure!(
            self.status == status,
            "HTTP {} instead of {status}: {}",
            self.status,
            self.raw
        );
        Ok(())
    }
}

/// The `Error::ResponseError` of a call that must fail, with its body parsed into `ErrorResponse`.
fn expect_api_error<T: std::fmt::Debug, E: ErrorBody>(
    result: Result<T, Error<E>>,
) -> Check<ApiError> {
    match result {
        Err(Error::ResponseError(ResponseContent {
            status,
            content,
            entity,
        })) => {
            let body = entity.as_ref().and_then(ErrorBody::body).cloned();
            let body =
                body.ok_or_else(|| format!("HTTP {status}: body is no ErrorResponse: {content}"))?;
            Ok(ApiError {
                status: status.as_u16(),
                body,
                raw: content,
            })
        }
        Err(other) => Err(format!("expected an error answer, got {}", describe(other))),
        Ok(value) => Err(format!("expected an error answer, got {value:?}")),
    }
}

fn describe<E>(error: Error<E>) -> String {
    match error {
        Error::ResponseError(response) => format!("HTTP {}: {}", response.status, response.content),
        other => other.to_string(),
    }
}

/// A small text-to-image request (the default size: each check sets what it tests).
fn text_request() -> TextToImageRequest {
    TextToImageRequest {
        num_inference_steps: Some(20),
        ..TextToImageRequest::new("a lighthouse at dusk, watercolour".into())
    }
}

async fn submit_text(
    key: &Configuration,
    request: TextToImageRequest,
) -> Result<SubmitResult, Error<text_to_image_api::SubmitTextToImageError>> {
    text_to_image_api::submit_text_to_image(key, request, None, None).await
}

/// A 202 ticket: QUEUED, the model's request-id prefix, and the polling URL on this gateway.
fn check_ticket(gateway: &Gateway, ticket: &SubmitResult, prefix: &str) -> Check {
    ensure!(
        ticket.status == Status::Queued,
        "status {} instead of QUEUED",
        ticket.status
    );
    ensure!(
        ticket.request_id.starts_with(prefix),
        "request_id {:?} does not start {prefix:?}",
        ticket.request_id
    );
    let expected = format!(
        "{}/v2/requests/status/{}",
        gateway.base_url, ticket.request_id
    );
    ensure!(
        ticket.polling_url.as_deref() == Some(&*expected),
        "polling_url {:?}, expected {expected:?}",
        ticket.polling_url
    );
    Ok(())
}

/// Statuses only move forward along QUEUED → PROCESSING → COMPLETED, end there, with completed_at.
fn check_flow(job: &Polled) -> Check {
    let rank = |status: &Status| match status {
        Status::Queued => 0,
        Status::Processing => 1,
        Status::Completed => 2,
        Status::Failed | Status::Error => 3,
    };
    ensure!(
        job.seen
            .windows(2)
            .all(|pair| rank(&pair[0]) <= rank(&pair[1])),
        "statuses went back: {:?}",
        job.seen
    );
    ensure!(
        job.seen.last() == Some(&Status::Completed),
        "ended {:?}",
        job.seen.last()
    );
    ensure!(
        matches!(&job.last.completed_at, Some(Some(at)) if !at.is_empty()),
        "completed_at not set: {:?}",
        job.last.completed_at
    );
    Ok(())
}

/// Check 1, `text_to_image`: a custom 320x240 size through `ImageSize`, seed 7; the 202 ticket,
/// polled to COMPLETED; the JPEG downloaded.
async fn text_to_image(gateway: &Gateway, first_job: &mut Option<Polled>) -> Check {
    let size = ImageSize::CustomImageSize(Box::new(CustomImageSize::new(320, 240)));
    let request = TextToImageRequest {
        image_size: Some(Box::new(size)),
        seed: Some(7),
        ..text_request()
    };
    let ticket = submit_text(&gateway.api, request)
        .await
        .map_err(|e| format!("submit_text_to_image: {}", describe(e)))?;
    check_ticket(gateway, &ticket, "boogu-image_")?;
    let job = first_job.insert(
        gateway
            .poll_to_completed(&gateway.api, &ticket.request_id)
            .await?,
    );
    ensure!(
        job.last.model_id == TEXT_MODEL,
        "model_id {:?}, expected {TEXT_MODEL:?}",
        job.last.model_id
    );
    gateway
        .download_image(job.first_media_url()?, &JPEG, (320, 240))
        .await
}

/// Check 3, `image_edit`: an edit of the first job's image, as a PNG at the `square` preset
/// (512x512), polled forward to COMPLETED and downloaded.
async fn image_edit(gateway: &Gateway, first_job: Option<&Polled>) -> Check {
    let image_url = first_job.ok_or(NEEDS_FIRST_JOB)?.first_media_url()?;
    let request = ImageEditRequest {
        image_size: Some(Box::new(ImageSize::ImageSizePreset(
            ImageSizePreset::Square,
        ))),
        output_format: Some(image_edit_request::OutputFormat::Png),
        ..ImageEditRequest::new("make it a winter night".into(), image_url.into())
    };
    let ticket = image_edit_api::submit_image_edit(&gateway.api, request, None, None)
        .await
        .map_err(|e| format!("submit_image_edit: {}", describe(e)))?;
    check_ticket(gateway, &ticket, "boogu-image-edit_")?;
    let job = gateway
        .poll_to_completed(&gateway.api, &ticket.request_id)
        .await?;
    check_flow(&job)?;
    gateway
        .download_image(job.first_media_url()?, &PNG, (512, 512))
        .await
}

/// Check 4, `sync_mode`: the same typed submit call, with `sync_mode: true`, parses the 200 answer
/// (the finished status object, images inline) into the same `SubmitResult`.
async fn sync_mode(gateway: &Gateway) -> Check {
    let request = TextToImageRequest {
        sync_mode: Some(true),
        ..text_request()
    };
    let answer = submit_text(&gateway.api, request)
        .await
        .map_err(|e| format!("submit_text_to_image: {}", describe(e)))?;
    ensure!(
        answer.status == Status::Completed,
        "status {} instead of COMPLETED",
        answer.status
    );
    ensure!(
        answer.model_id.as_deref() == Some(TEXT_MODEL),
        "model_id {:?}, expected {TEXT_MODEL:?}",
        answer.model_id
    );
    let url = match &answer.output {
        Some(Some(output)) => output
            .media_url
            .first()
            .ok_or("output.media_url is empty")?,
        missing => return Err(format!("no output: {missing:?}")),
    };
    ensure!(
        url.starts_with("data:image/jpeg;base64,"),
        "media_url[0] starts {:?}",
        &url[..url.len().min(32)]
    );
    Ok(())
}

/// Check 5, `unknown_fields`: the generated Rust models keep no map of unknown fields; serde drops
/// them silently (the models have no `deny_unknown_fields`), so `progress` and `region` cannot be
/// read back through them. The check is that every status answer parsed; and, so that it cannot
/// pass on a gateway that sent no extra fields, one error answer of the same operation (an unknown
/// request id, 404) shows them in its raw body while its typed `ErrorResponse` parsed too.
async fn unknown_fields(gateway: &Gateway) -> Check {
    let parsed = gateway.status_answers.get();
    ensure!(parsed > 0, "no status answer was parsed");
    let missing = "boogu-image_00000000-0000-7000-8000-000000000000";
    let error = expect_api_error(gateway.status(&gateway.api, missing).await)?;
    error.expect(404)?;
    let raw: serde_json::Value =
        serde_json::from_str(&error.raw).map_err(|e| format!("404 body: {e}"))?;
    ensure!(
        raw["region"] == "eu-1" && raw["progress"] == 0.5,
        "the gateway sent no extra fields: {}",
        error.raw
    );
    Ok(())
}

/// Check 6, `error_402`: a submit with the key that has no balance: 402 `Insufficient Balance`.
async fn error_402(gateway: &Gateway) -> Check {
    let error = expect_api_error(submit_text(&gateway.broke, text_request()).await)?;
    error.expect(402)?;
    ensure!(
        error.body.error == "Insufficient Balance",
        "error {:?}",
        error.body.error
    );
    Ok(())
}

/// Check 7, `error_400`: `num_inference_steps` outside 20–50: 400, and a message naming the field.
async fn error_400(gateway: &Gateway) -> Check {
    let request = TextToImageRequest {
        num_inference_steps: Some(99),
        ..text_request()
    };
    let error = expect_api_error(submit_text(&gateway.api, request).await)?;
    error.expect(400)?;
    ensure!(!error.body.error.is_empty(), "empty error name");
    ensure!(
        error.body.message.contains("num_inference_steps"),
        "message {:?} does not name num_inference_steps",
        error.body.message
    );
    Ok(())
}

/// Check 8, `error_429`: status polls without a pause on the throttled key until one answers 429
/// `Too Many Requests`; then a wait, and the job polled to COMPLETED. reqwest retries no HTTP
/// status by itself (its default retry policy covers HTTP/2 protocol refusals only), so nothing
/// needs turning off: every 429 reaches the generated code.
async fn error_429(gateway: &Gateway) -> Check {
    let key = &gateway.throttled;
    let ticket = submit_text(key, text_request())
        .await
        .map_err(|e| format!("submit_text_to_image: {}", describe(e)))?;
    let mut throttled = None;
    for _ in 0..THROTTLE_TRIES {
        let answer = gateway.status(key, &ticket.request_id).await;
        if answer.is_err() {
            throttled = Some(expect_api_error(answer)?);
            break;
        }
    }
    let error = throttled.ok_or_else(|| format!("no 429 in {THROTTLE_TRIES} status polls"))?;
    error.expect(429)?;
    ensure!(
        error.body.error == "Too Many Requests",
        "error {:?}",
        error.body.error
    );
    // Retry-After is out of reach: `ResponseContent` has no headers (see RETRY_AFTER_FALLBACK).
    sleep(RETRY_AFTER_FALLBACK).await;
    gateway
        .poll_to_completed(key, &ticket.request_id)
        .await
        .map(drop)
}

/// Prints each check's line and remembers whether all passed.
#[derive(Default)]
struct Report {
    failed: usize,
}

impl Report {
    fn check(&mut self, name: &str, result: Check) {
        match result {
            Ok(()) => println!("PASS {name}"),
            Err(reason) => {
                self.failed += 1;
                println!("FAIL {name}: {reason}");
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let gateway = match Gateway::from_env() {
        Ok(gateway) => gateway,
        Err(reason) => {
            println!("FAIL setup: {reason}");
            return ExitCode::FAILURE;
        }
    };
    let mut report = Report::default();
    let mut first_job = None;
    report.check(
        "text_to_image",
        text_to_image(&gateway, &mut first_job).await,
    );
    report.check(
        "status_flow",
        first_job
            .as_ref()
            .ok_or_else(|| NEEDS_FIRST_JOB.to_owned())
            .and_then(check_flow),
    );
    report.check("image_edit", image_edit(&gateway, first_job.as_ref()).await);
    report.check("sync_mode", sync_mode(&gateway).await);
    report.check("unknown_fields", unknown_fields(&gateway).await);
    report.check("error_402", error_402(&gateway).await);
    report.check("error_400", error_400(&gateway).await);
    report.check("error_429", error_429(&gateway).await);
    if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
