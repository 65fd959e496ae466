/*
 * Smoke test of the Java client that OpenAPI Generator 7.26.0 generates from openapi.yaml
 * (generator `java`, library `restclient`: Spring 6 RestClient and Jackson 2; config
 * clients/openapi-generator/java.yaml), run against the mock gateway.
 *
 * What it proves, through the generated API classes and models only (the key is sent by the
 * generated ApiKeyAuth; no hand-built HTTP for API calls, media downloads are plain GETs):
 *   text_to_image   a custom ImageSize (320x240) is sent, the 202 ticket parses into SubmitResult,
 *                   polling reaches COMPLETED, the JPEG downloads and decodes at 320x240;
 *   status_flow     the statuses seen only move forward QUEUED -> PROCESSING -> COMPLETED;
 *   image_edit      an edit with a preset ImageSize ("square") and output_format png completes; its
 *                   PNG downloads and decodes;
 *   sync_mode       the same typed submit parses the 200 (the finished status, the image inline);
 *   unknown_fields  answers with fields the spec does not name parse, and the models keep them;
 *   error_402, error_400, error_429
 *                   error answers surface as Spring's HttpClientErrorException with the status, the
 *                   body parsed into the generated ErrorResponse, and (429) Retry-After.
 * Prints one line per check, `PASS <name>` or `FAIL <name>: <reason>`, runs every check, and exits
 * 0 only when all passed.
 *
 * Environment: BOOGU_BASE_URL (the mock, e.g. http://127.0.0.1:41234), BOOGU_API_KEY,
 * BOOGU_BROKE_KEY (balance 0), BOOGU_THROTTLED_KEY (a rate-limit bucket of its own); the mock set up
 * as tools/client_smoke.py does (10 requests/s, bursts of 10; extra_fields progress and region).
 * Build, then run, from the repository root (docs/other-languages.md):
 *   mvn -B -q --no-transfer-progress -f clients/openapi-generator/smoke/java/reactor/pom.xml \
 *       -Dmaven.test.skip=true -Dmaven.javadoc.skip=true -Dmaven.source.skip=true package
 *   java -cp "build/clients/openapi-generator/java-smoke/classes:$(cat \
 *       build/clients/openapi-generator/java-smoke/classpath.txt)" ai.boogu.smoke.Smoke
 */
package ai.boogu.smoke;

import ai.boogu.client.ApiClient;
import ai.boogu.client.api.ImageEditApi;
import ai.boogu.client.api.StatusApi;
import ai.boogu.client.api.TextToImageApi;
import ai.boogu.client.model.CustomImageSize;
import ai.boogu.client.model.ErrorResponse;
import ai.boogu.client.model.ImageEditRequest;
import ai.boogu.client.model.ImageSize;
import ai.boogu.client.model.ImageSizePreset;
import ai.boogu.client.model.RequestStatus;
import ai.boogu.client.model.Status;
import ai.boogu.client.model.SubmitResult;
import ai.boogu.client.model.TextToImageRequest;

import com.fasterxml.jackson.databind.ObjectMapper;

import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.lang.reflect.Field;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Supplier;
import java.util.stream.Stream;
import javax.imageio.ImageIO;

import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.http.client.ClientHttpRequestFactory;
import org.springframework.http.client.JdkClientHttpRequestFactory;
import org.springframework.web.client.HttpClientErrorException;
import org.springframework.web.client.RestClient;

public final class Smoke {

    private static final Duration POLL_EVERY = Duration.ofMillis(150);
    private static final Duration POLL_AT_MOST = Duration.ofSeconds(30);
    private static final int MAX_RAPID_POLLS = 200;
    private static final List<Status> FORWARD = List.of(Status.QUEUED, Status.PROCESSING, Status.COMPLETED);
    private static final byte[] PNG_SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    private static final String JPEG_DATA_URI = "data:image/jpeg;base64,";

    /** A check's body: an exception or AssertionError fails the check with its message. */
    @FunctionalInterface
    private interface Check {
        void run() throws Exception;
    }

    /** The generated API classes, sharing one generated ApiClient that sends one subscription key. */
    private record Api(ApiClient client, TextToImageApi textToImage, ImageEditApi imageEdit, StatusApi status) {
        static Api forKey(String baseUrl, String key) {
            ApiClient client = jdkApiClient();
            client.setBasePath(baseUrl);
            client.setApiKey(key); // the generated ApiKeyAuth sends it as Ocp-Apim-Subscription-Key
            return new Api(client, new TextToImageApi(client), new ImageEditApi(client), new StatusApi(client));
        }

        ResponseEntity<SubmitResult> submit(TextToImageRequest request) {
            return textToImage.submitTextToImageWithHttpInfo(request, null, null);
        }

        ResponseEntity<SubmitResult> submit(ImageEditRequest request) {
            return imageEdit.submitImageEditWithHttpInfo(request, null, null);
        }
    }

    /** A job polled to the end: the statuses in the order seen (the submit's first), every answer. */
    private record Polled(List<Status> statuses, List<RequestStatus> answers) {
        RequestStatus last() {
            return answers.get(answers.size() - 1);
        }
    }

    /** An error answer: the exception Spring threw, and its body parsed into the generated model. */
    private record ApiError(HttpClientErrorException exception, ErrorResponse body) {}

    private final String baseUrl;
    private final Api api;
    private final Api broke;
    private final Api throttled;
    private final HttpClient downloads = HttpClient.newHttpClient();
    private int failures;

    // What later checks need from earlier ones (null until the earlier check got it).
    private String textToImageUrl;
    private Polled textToImagePoll;
    private Polled imageEditPoll;

    private Smoke(String baseUrl, String apiKey, String brokeKey, String throttledKey) {
        this.baseUrl = baseUrl;
        this.api = Api.forKey(baseUrl, apiKey);
        this.broke = Api.forKey(baseUrl, brokeKey);
        this.throttled = Api.forKey(baseUrl, throttledKey);
    }

    public static void main(String[] args) {
        Smoke smoke = new Smoke(
                env("BOOGU_BASE_URL").replaceAll("/+$", ""),
                env("BOOGU_API_KEY"),
                env("BOOGU_BROKE_KEY"),
                env("BOOGU_THROTTLED_KEY"));
        System.out.println("INFO http: " + describeTransport(smoke.api.client().getRestClient()));
        System.exit(smoke.runAll() == 0 ? 0 : 1);
    }

    private int runAll() {
        check("text_to_image", this::textToImage);
        check("status_flow", this::statusFlow);
        check("image_edit", this::imageEdit);
        check("sync_mode", this::syncMode);
        check("unknown_fields", this::unknownFields);
        check("error_402", this::error402);
        check("error_400", this::error400);
        check("error_429", this::error429);
        return failures;
    }

    // ---- the checks ----------------------------------------------------------------------------

    private void textToImage() throws Exception {
        ImageSize size = new CustomImageSize().width(320).height(240);
        SubmitResult ticket = expectTicket(
                api.submit(new TextToImageRequest().prompt("A lighthouse on a cliff").imageSize(size).seed(7)),
                "boogu-image_");
        textToImagePoll = pollToCompleted(api, ticket);
        RequestStatus done = textToImagePoll.last();
        expect("boogu-image".equals(done.getModelId()), "model_id is " + done.getModelId());
        textToImageUrl = firstMediaUrl(done);
        BufferedImage image = decode(download(textToImageUrl, "image/jpeg"));
        expect(image.getWidth() == 320 && image.getHeight() == 240,
                "the image is " + image.getWidth() + "x" + image.getHeight() + ", not 320x240");
    }

    private void statusFlow() {
        // Check 3 runs after this one, so it (and error_429) judges its own polling the same way.
        expectForward(need(textToImagePoll, "text_to_image did not poll to the end"));
    }

    private void imageEdit() throws Exception {
        URI source = URI.create(need(textToImageUrl, "text_to_image gave no image to edit"));
        ImageSize size = ImageSizePreset.SQUARE;
        SubmitResult ticket = expectTicket(
                api.submit(new ImageEditRequest()
                        .prompt("Make it a watercolour")
                        .imageUrl(source)
                        .imageSize(size)
                        .outputFormat(ImageEditRequest.OutputFormatEnum.PNG)),
                "boogu-image-edit_");
        imageEditPoll = pollToCompleted(api, ticket);
        expectForward(imageEditPoll);
        byte[] png = download(firstMediaUrl(imageEditPoll.last()), "image/png");
        expect(startsWith(png, PNG_SIGNATURE), "the download has no PNG signature");
        decode(png);
    }

    private void syncMode() throws Exception {
        // The same typed call as check 1: its SubmitResult parses the 200 (the finished status) too.
        ResponseEntity<SubmitResult> answer =
                api.submit(new TextToImageRequest().prompt("A lighthouse").syncMode(true));
        expect(answer.getStatusCode().value() == 200, "HTTP " + answer.getStatusCode().value() + ", not 200");
        SubmitResult result = Objects.requireNonNull(answer.getBody(), "no body");
        expect(result.getStatus() == Status.COMPLETED, "status is " + result.getStatus());
        expect("boogu-image".equals(result.getModelId()), "model_id is " + result.getModelId());
        String image = Optional.ofNullable(result.getOutput())
                .flatMap(output -> output.getMediaUrl().stream().findFirst())
                .orElse(null);
        expect(image != null && image.startsWith(JPEG_DATA_URI), "media_url[0] is " + abbreviate(image, 40));
        decode(Base64.getDecoder().decode(image.substring(JPEG_DATA_URI.length())));
    }

    private void unknownFields() {
        // The response schemas are open (additionalProperties: true), so the generated models keep
        // what they do not name in getAdditionalProperties() (a @JsonAnySetter map).
        List<RequestStatus> answers = Stream.of(textToImagePoll, imageEditPoll)
                .filter(Objects::nonNull)
                .flatMap(polled -> polled.answers().stream())
                .toList();
        expect(!answers.isEmpty(), "skipped: text_to_image and image_edit got no status answers");
        for (RequestStatus answer : answers) {
            Map<String, Object> extra = Optional.ofNullable(answer.getAdditionalProperties()).orElse(Map.of());
            expect("eu-1".equals(extra.get("region")), "region is " + extra.get("region") + " in " + extra);
            expect(extra.get("progress") instanceof Number, "progress is " + extra.get("progress"));
        }
    }

    private void error402() throws IOException {
        ErrorResponse error = expectApiError(broke, HttpStatus.PAYMENT_REQUIRED,
                () -> broke.submit(new TextToImageRequest().prompt("A lighthouse, no balance"))).body();
        expect("Insufficient Balance".equals(error.getError()), "error is " + error.getError());
    }

    private void error400() throws IOException {
        ErrorResponse error = expectApiError(api, HttpStatus.BAD_REQUEST,
                () -> api.submit(new TextToImageRequest().prompt("A lighthouse").numInferenceSteps(99))).body();
        expect(error.getError() != null && !error.getError().isEmpty(), "error is empty");
        expect(error.getMessage() != null && error.getMessage().contains("num_inference_steps"),
                "message does not name num_inference_steps: " + error.getMessage());
    }

    private void error429() throws Exception {
        SubmitResult ticket =
                expectTicket(throttled.submit(new TextToImageRequest().prompt("A lighthouse")), "boogu-image_");
        // Neither Spring's RestClient nor the JDK HttpClient retries by itself: one call, one request.
        ApiError tooMany = expectApiError(throttled, HttpStatus.TOO_MANY_REQUESTS, () -> {
            for (int i = 0; i < MAX_RAPID_POLLS; i++) {
                throttled.status().getRequestStatus(ticket.getRequestId());
            }
            return null;
        });
        expect("Too Many Requests".equals(tooMany.body().getError()), "error is " + tooMany.body().getError());
        // Spring's exception keeps the response headers, so Retry-After is readable from it.
        String retryAfter = Optional.ofNullable(tooMany.exception().getResponseHeaders())
                .map(headers -> headers.getFirst(HttpHeaders.RETRY_AFTER))
                .orElse(null);
        expect(retryAfter != null && retryAfter.matches("\\d+"), "Retry-After is " + retryAfter);
        Thread.sleep(Duration.ofSeconds(Long.parseLong(retryAfter)).toMillis());
        expectForward(pollToCompleted(throttled, ticket));
    }

    // ---- helpers -------------------------------------------------------------------------------

    private void check(String name, Check body) {
        try {
            body.run();
            System.out.println("PASS " + name);
        } catch (Exception | AssertionError e) {
            failures++;
            String reason = e instanceof AssertionError
                    ? e.getMessage()
                    : e.getClass().getSimpleName() + ": " + e.getMessage();
            System.out.println("FAIL " + name + ": " + abbreviate(String.valueOf(reason).replaceAll("\\s+", " "), 400));
        }
    }

    private static void expect(boolean condition, String otherwise) {
        if (!condition) {
            throw new AssertionError(otherwise);
        }
    }

    /** What an earlier check left for this one; without it this check fails as skipped. */
    private static <T> T need(T earlier, String otherwise) {
        expect(earlier != null, "skipped: " + otherwise);
        return earlier;
    }

    /** A 202 ticket: QUEUED, the request id's prefix, and the polling URL of that id. */
    private SubmitResult expectTicket(ResponseEntity<SubmitResult> answer, String idPrefix) {
        expect(answer.getStatusCode().value() == 202, "HTTP " + answer.getStatusCode().value() + ", not 202");
        SubmitResult ticket = Objects.requireNonNull(answer.getBody(), "no body");
        expect(ticket.getStatus() == Status.QUEUED, "status is " + ticket.getStatus());
        expect(ticket.getRequestId() != null && ticket.getRequestId().startsWith(idPrefix),
                "request_id " + ticket.getRequestId() + " does not start " + idPrefix);
        URI pollingUrl = URI.create(baseUrl + "/v2/requests/status/" + ticket.getRequestId());
        expect(pollingUrl.equals(ticket.getPollingUrl()), "polling_url is " + ticket.getPollingUrl());
        return ticket;
    }

    /** Polls get_request_status every 150 ms until COMPLETED; a FAILED or ERROR job, or 30 s, fail. */
    private static Polled pollToCompleted(Api api, SubmitResult ticket) throws InterruptedException {
        List<Status> statuses = new ArrayList<>(List.of(ticket.getStatus()));
        List<RequestStatus> answers = new ArrayList<>();
        long deadline = System.nanoTime() + POLL_AT_MOST.toNanos();
        while (true) {
            RequestStatus answer = api.status().getRequestStatus(ticket.getRequestId());
            answers.add(answer);
            statuses.add(answer.getStatus());
            if (answer.getStatus() == Status.COMPLETED) {
                return new Polled(statuses, answers);
            }
            expect(FORWARD.contains(answer.getStatus()),
                    "the job ended " + answer.getStatus() + ": " + answer.getError());
            expect(System.nanoTime() < deadline, "not COMPLETED after " + POLL_AT_MOST.toSeconds() + " s: " + statuses);
            Thread.sleep(POLL_EVERY.toMillis());
        }
    }

    /** QUEUED -> PROCESSING -> COMPLETED, never back, ending COMPLETED with completed_at set. */
    private static void expectForward(Polled polled) {
        int rank = 0;
        for (Status status : polled.statuses()) {
            int next = FORWARD.indexOf(status);
            expect(next >= rank, "the statuses went back: " + polled.statuses());
            rank = next;
        }
        expect(rank == FORWARD.size() - 1, "the statuses did not end COMPLETED: " + polled.statuses());
        String completedAt = polled.last().getCompletedAt();
        expect(completedAt != null && !completedAt.isEmpty(), "completed_at is not set at the end");
    }

    private static String firstMediaUrl(RequestStatus done) {
        expect(done.getOutput() != null && !done.getOutput().getMediaUrl().isEmpty(), "no output.media_url");
        return done.getOutput().getMediaUrl().get(0);
    }

    /** A plain GET of a media URL (no key needed): 200 and the given Content-Type, or the check fails. */
    private byte[] download(String url, String contentType) throws IOException, InterruptedException {
        HttpResponse<byte[]> response = downloads.send(
                HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.ofByteArray());
        expect(response.statusCode() == 200, "GET " + url + " answered " + response.statusCode());
        String got = response.headers().firstValue("Content-Type").orElse("");
        expect(got.split(";")[0].trim().equalsIgnoreCase(contentType),
                "Content-Type is " + got + ", not " + contentType);
        return response.body();
    }

    private static BufferedImage decode(byte[] bytes) throws IOException {
        BufferedImage image = ImageIO.read(new ByteArrayInputStream(bytes));
        expect(image != null, "ImageIO cannot decode the " + bytes.length + " bytes");
        return image;
    }

    /**
     * Runs a call that must fail with the given 4xx. The restclient library has no exception type of
     * its own: Spring throws HttpClientErrorException (a subclass for most statuses, the base class
     * for 402), whose body is parsed here into ErrorResponse with the generated ApiClient's mapper.
     */
    private static ApiError expectApiError(Api api, HttpStatus expected, Supplier<?> call) throws IOException {
        try {
            call.get();
        } catch (HttpClientErrorException e) {
            expect(e.getStatusCode().value() == expected.value(),
                    "HTTP " + e.getStatusCode().value() + ", not " + expected.value() + ": "
                            + e.getResponseBodyAsString());
            ErrorResponse body = api.client().getObjectMapper()
                    .readValue(e.getResponseBodyAsByteArray(), ErrorResponse.class);
            return new ApiError(e, body);
        }
        throw new AssertionError("no HTTP " + expected.value() + ": every call succeeded");
    }

    /**
     * The generated ApiClient, on the JDK's own java.net.http.HttpClient with default settings.
     *
     * The ApiClient is the generated default: unset optional fields are left out of the JSON by the
     * NON_NULL annotation that java.yaml adds to every model (the default mapper would send
     * "seed": null, which the closed request schemas refuse).
     *
     * Spring 6.2's RestClient.builder(), which the ApiClient uses, picks JdkClientHttpRequestFactory
     * over HttpClient.newHttpClient() when no Apache, Jetty or Reactor client is on the classpath, as
     * here. Should that change, the same factory is set explicitly, through the public constructor.
     */
    private static ApiClient jdkApiClient() {
        ApiClient client = new ApiClient();
        if (requestFactory(client.getRestClient()) instanceof JdkClientHttpRequestFactory) {
            return client;
        }
        ObjectMapper mapper = client.getObjectMapper();
        RestClient restClient = ApiClient.buildRestClientBuilder(mapper)
                .requestFactory(new JdkClientHttpRequestFactory(HttpClient.newHttpClient()))
                .build();
        return new ApiClient(restClient, mapper, ApiClient.createDefaultDateFormat());
    }

    /** Which request factory and HTTP version a RestClient uses (Spring keeps them in private fields). */
    private static String describeTransport(RestClient restClient) {
        ClientHttpRequestFactory factory = requestFactory(restClient);
        if (factory == null) {
            return "request factory unknown (Spring's private fields have moved)";
        }
        String description = factory.getClass().getName();
        if (privateField(factory, "httpClient") instanceof HttpClient http) {
            description += " over java.net.http.HttpClient, version " + http.version();
            if (http.version() == HttpClient.Version.HTTP_2) {
                description += " (the default: requests on plain http offer Upgrade: h2c)";
            }
        }
        return description;
    }

    private static ClientHttpRequestFactory requestFactory(RestClient restClient) {
        Object factory = privateField(restClient, "clientRequestFactory");
        return factory instanceof ClientHttpRequestFactory found ? found : null;
    }

    private static Object privateField(Object owner, String name) {
        for (Class<?> type = owner.getClass(); type != null; type = type.getSuperclass()) {
            try {
                Field field = type.getDeclaredField(name);
                field.setAccessible(true);
                return field.get(owner);
            } catch (NoSuchFieldException e) {
                continue; // declared further up, perhaps
            } catch (ReflectiveOperationException | RuntimeException e) {
                return null;
            }
        }
        return null;
    }

    private static boolean startsWith(byte[] bytes, byte[] prefix) {
        return bytes.length >= prefix.length && Arrays.equals(bytes, 0, prefix.length, prefix, 0, prefix.length);
    }

    private static String abbreviate(String text, int max) {
        return text == null || text.length() <= max ? text : text.substring(0, max) + "...";
    }

    private static String env(String name) {
        String value = System.getenv(name);
        if (value == null || value.isEmpty()) {
            System.out.println("FAIL environment: " + name + " is not set");
            System.exit(2);
        }
        return value;
    }
}
