// The status page, /metrics and /api/status of the real binary, and the page in a real browser.
#include "support/http_client.hpp"
#include "support/service_process.hpp"
#include "support/store_probe.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

using namespace std::chrono_literals;
using Catch::Contains;
using nlohmann::json;

namespace test_http_integration {
namespace {

// A broker, a state directory and the service with its web server on a free loopback port.
struct WebBench {
    explicit WebBench(std::vector<std::string> extra = {}, std::vector<std::string> env = {})
        : dir(test::make_temp_dir("ecu2mqtt-http")),
          http_port(test::free_port()), args{"--http-listen",
                                             "127.0.0.1:" + std::to_string(http_port),
                                             "--dns-check-name", "localhost"},
          env(std::move(env)) {
        args.insert(args.end(), extra.begin(), extra.end());
        restart();
    }
    // Stops the service (if it runs) and starts it again on the same state and status port.
    void restart() {
        service.reset();
        service =
            std::make_unique<test::ServiceProcess>(broker.url(), dir / "state", args, true, env);
    }
    ~WebBench() {
        service.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    test::MosquittoBroker broker;
    std::filesystem::path dir;
    std::uint16_t http_port;
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::unique_ptr<test::ServiceProcess> service;
};

// Runs a program to completion, its output in `output`; returns its exit status.
int run(const std::vector<std::string>& argv, const std::filesystem::path& output,
        std::chrono::seconds limit = 60s) {
    test::ChildProcess child(argv, output.string());
    const auto status = child.wait_for(limit);
    REQUIRE(status);
    return *status;
}

std::string metric_value(const std::string& metrics, const std::string& series) {
    const auto at = metrics.find("\n" + series + " ");
    REQUIRE(at != std::string::npos);
    const auto start = at + series.size() + 2;
    return metrics.substr(start, metrics.find('\n', start) - start);
}

void check_type(const json& object, const std::string& key, json::value_t type) {
    INFO(key << " in " << object.dump().substr(0, 200));
    REQUIRE(object.contains(key));
    if (type == json::value_t::number_float)
        CHECK(object[key].is_number());
    else if (type == json::value_t::number_unsigned)
        CHECK(object[key].is_number_integer());
    else
        CHECK(object[key].type() == type);
}

// The schema docs/status-page.md documents for /api/status.
void check_status_schema(const json& s) {
    using t = json::value_t;
    for (const auto& [key, type] :
         std::vector<std::pair<std::string, t>>{{"version", t::string},
                                                {"now", t::number_unsigned},
                                                {"started", t::number_unsigned},
                                                {"uptime_s", t::number_unsigned},
                                                {"mqtt", t::object},
                                                {"store", t::object},
                                                {"counters", t::object},
                                                {"dns", t::object},
                                                {"ecus", t::array},
                                                {"recent_problems", t::array}})
        check_type(s, key, type);
    for (const auto& key : {"broker", "last_error"})
        check_type(s["mqtt"], key, t::string);
    check_type(s["mqtt"], "connected", t::boolean);
    for (const auto& key : {"spooled", "spool_dropped", "pending_readings"})
        check_type(s["mqtt"], key, t::number_unsigned);
    for (const auto& key :
         {"decode_errors", "publishes", "publish_failures", "connections_opened",
          "connections_refused", "connections_evicted", "ema_relayed", "ema_fallbacks"})
        check_type(s["counters"], key, t::number_unsigned);
    for (const auto& key : {"file", "last_error"})
        check_type(s["store"], key, t::string);
    check_type(s["store"], "writable", t::boolean);
    for (const auto& key : {"commits", "failed_writes"})
        check_type(s["store"], key, t::number_unsigned);
    check_type(s["counters"], "uploads", t::array);
    check_type(s["counters"], "replies", t::object);
    for (const auto& key : {"checked", "points_here"})
        check_type(s["dns"], key, t::boolean);
    for (const auto& key : {"name", "message", "verdict"})
        check_type(s["dns"], key, t::string);
    for (const auto& ecu : s["ecus"]) {
        for (const auto& key : {"id", "model", "peer_address", "ecu_timestamp", "reply_rule",
                                "reply", "availability"})
            check_type(ecu, key, t::string);
        for (const auto& key : {"peer_port", "local_port", "received"})
            check_type(ecu, key, t::number_unsigned);
        // null for an ECU known to the database but with no trustworthy reading yet
        CHECK((ecu["last_upload_age_s"].is_null() || ecu["last_upload_age_s"].is_number_integer()));
        for (const auto& key : {"power_w", "lifetime_energy_kwh"})
            check_type(ecu, key, t::number_float);
        for (const auto& key : {"power_curve", "inverters"})
            check_type(ecu, key, t::array);
        check_type(ecu, "unknown", t::object);
        CHECK((ecu["today_energy_kwh"].is_null() || ecu["today_energy_kwh"].is_number()));
        CHECK((ecu["clock_offset_s"].is_null() || ecu["clock_offset_s"].is_number()));
        for (const auto& inverter : ecu["inverters"]) {
            for (const auto& key : {"uid", "model"})
                check_type(inverter, key, t::string);
            for (const auto& key : {"temperature_c", "frequency_hz", "power_w"})
                check_type(inverter, key, t::number_float);
            check_type(inverter, "reporting", t::boolean);
            for (const auto& channel : inverter["channels"])
                for (const auto& key : {"channel", "voltage_v", "current_a", "power_w"})
                    check_type(channel, key, t::number_float);
        }
    }
    for (const auto& problem : s["recent_problems"]) {
        check_type(problem, "level", t::string);
        check_type(problem, "line", t::string);
    }
}

// Headless Chromium on the bench's page (`path`) doing `what` (--dump-dom, --screenshot=FILE) once
// `page_ms` of the page's time have passed (it refreshes every 5 s); returns what it printed (the
// DOM for --dump-dom), its console messages included.
std::string browse(const WebBench& bench, const std::string& what,
                   const std::string& window = "1280,1240", const std::string& path = "/",
                   int page_ms = 4000) {
    const auto output = bench.dir / "browser.txt";
    const std::vector<std::string> argv{CHROMIUM,
                                        "--headless",
                                        "--no-sandbox",
                                        "--disable-gpu",
                                        "--disable-quic",
                                        "--no-first-run",
                                        "--disable-background-networking",
                                        "--disable-component-update",
                                        "--disable-sync",
                                        "--hide-scrollbars",
                                        "--enable-logging=stderr",
                                        "--v=0",
                                        "--user-data-dir=" + (bench.dir / "profile").string(),
                                        "--window-size=" + window,
                                        "--virtual-time-budget=" + std::to_string(page_ms),
                                        what,
                                        "http://127.0.0.1:" + std::to_string(bench.http_port) +
                                            path};
    REQUIRE(run(argv, output, 90s) == 0);
    return test::read_file(output.string());
}

} // namespace

TEST_CASE("http: after the captured upload, status, metrics and page show it") {
    WebBench bench;
    REQUIRE(test::upload(bench.service->port(), test::captured_upload()).size() == 17);

    const auto answer = test::http_get(bench.http_port, "/api/status");
    REQUIRE(answer.status == 200);
    const auto status = json::parse(answer.body);
    check_status_schema(status);
    REQUIRE(status["ecus"].size() == 1);
    const auto& ecu = status["ecus"][0];
    CHECK(ecu["id"] == "216000064136");
    CHECK(ecu["peer_address"] == "127.0.0.1");
    CHECK(ecu["local_port"] == bench.service->port());
    CHECK(ecu["reply_rule"] == "upload-timestamp");
    CHECK(ecu["reply"] == "10120240206111714");
    REQUIRE(ecu["inverters"].size() == 2);
    CHECK(ecu["inverters"][0]["uid"] == "408000111178");
    CHECK(ecu["inverters"][1]["uid"] == "806000011223");
    CHECK(status["dns"]["points_here"] == true); // localhost, and the service listens there
    CHECK(answer.body.find("mqtt_password") == std::string::npos);

    const auto metrics = test::http_get(bench.http_port, "/metrics").body;
    const std::string ecu_label = "{ecu=\"216000064136\"}";
    CHECK(metric_value(metrics, "ecu2mqtt_ecu_power_watts" + ecu_label) == "190");
    CHECK(metric_value(metrics, "ecu2mqtt_ecu_lifetime_energy_joules" + ecu_label) ==
          "7660440000"); // 2127.9 kWh
    CHECK(metric_value(metrics, "ecu2mqtt_uploads_total{ecu=\"216000064136\",port=\"" +
                                    std::to_string(bench.service->port()) +
                                    "\",verdict=\"live\"}") == "1");
    CHECK(metric_value(metrics, "ecu2mqtt_channel_current_amperes{ecu=\"216000064136\",inverter="
                                "\"806000011223\",channel=\"3\"}") == "1.4");
    CHECK(metric_value(metrics, "ecu2mqtt_inverter_frequency_hertz{ecu=\"216000064136\","
                                "inverter=\"408000111178\"}") == "50");
    CHECK(metric_value(metrics, "ecu2mqtt_connections_opened_total") == "1");

    const auto page = test::http_get(bench.http_port, "/");
    CHECK(page.status == 200);
    CHECK_THAT(page.body, Contains("\"peer_address\":\"127.0.0.1\""));
    CHECK_THAT(page.body, Contains("806000011223"));
}

TEST_CASE("http: a database that cannot be written shows on the page, in the JSON and the "
          "metrics, until writing works again") {
    WebBench bench;
    REQUIRE(test::upload(bench.service->port(), test::captured_upload()).size() == 17);
    const auto database = ecu2mqtt::Store::file_in(bench.dir / "state");
    {
        // Another program holds the write lock past the service's patience, as a full disk
        // fails every write.
        test::DatabaseWriteLock lock(database);
        auto spec = test::captured_upload_spec();
        spec.timestamp = "20240206112214";
        test::slow_upload(bench.service->port(), test::build_upload(spec));
        const auto status = json::parse(test::http_get(bench.http_port, "/api/status").body);
        check_status_schema(status);
        CHECK(status["store"]["file"] == database.string());
        CHECK(status["store"]["writable"] == false);
        CHECK_THAT(status["store"]["last_error"].get<std::string>(), Contains("locked"));
        CHECK(status["store"]["failed_writes"].get<int>() >= 1);
        const auto metrics = test::http_get(bench.http_port, "/metrics").body;
        CHECK(metric_value(metrics, "ecu2mqtt_store_writable") == "0");
        CHECK(metric_value(metrics, "ecu2mqtt_store_failed_writes_total") != "0");

        const auto dom = browse(bench, "--dump-dom");
        CHECK_THAT(dom, Contains("id=\"store-check\""));
        CHECK_THAT(dom, Contains("Readings cannot be saved to " + database.string()));
        CHECK(dom.find("data-script-errors=\"yes\"") == std::string::npos);
    }
    auto spec = test::captured_upload_spec();
    spec.timestamp = "20240206112714";
    REQUIRE(test::slow_upload(bench.service->port(), test::build_upload(spec)).size() == 17);
    const auto status = json::parse(test::http_get(bench.http_port, "/api/status").body);
    CHECK(status["store"]["writable"] == true);
    CHECK_THAT(status["store"]["last_error"].get<std::string>(), Contains("locked"));
    CHECK(metric_value(test::http_get(bench.http_port, "/metrics").body,
                       "ecu2mqtt_store_writable") == "1");
}

TEST_CASE("http: after a restart the page shows what the database knows until the next upload") {
    WebBench bench;
    REQUIRE(test::upload(bench.service->port(), test::captured_upload()) == "10120240206111714");
    const auto before = json::parse(test::http_get(bench.http_port, "/api/status").body);
    REQUIRE(before["ecus"].size() == 1);
    REQUIRE_FALSE(before["ecus"][0]["model"].get<std::string>().empty());
    const std::string lifetime_metric = "ecu2mqtt_ecu_lifetime_energy_joules{ecu=\"216000064136\"}";
    const auto lifetime_before =
        metric_value(test::http_get(bench.http_port, "/metrics").body, lifetime_metric);

    bench.restart();
    const auto status = json::parse(test::http_get(bench.http_port, "/api/status").body);
    check_status_schema(status);
    REQUIRE(status["ecus"].size() == 1);
    const auto& ecu = status["ecus"][0];
    CHECK(ecu["id"] == "216000064136");
    CHECK(ecu["model"] == before["ecus"][0]["model"]);
    CHECK(ecu["lifetime_energy_kwh"].get<double>() == Approx(2127.9)); // the captured counter
    CHECK(ecu["ecu_timestamp"] == before["ecus"][0]["ecu_timestamp"]);
    CHECK(ecu["received"] == before["ecus"][0]["received"]);
    const auto age = ecu["last_upload_age_s"].get<std::int64_t>();
    CHECK(age >= 0);
    CHECK(age < 600);
    const auto metrics = test::http_get(bench.http_port, "/metrics").body;
    CHECK(metric_value(metrics, lifetime_metric) == lifetime_before);
    const auto age_metric =
        metric_value(metrics, "ecu2mqtt_ecu_last_upload_age_seconds{ecu=\"216000064136\"}");
    CHECK(std::stod(age_metric) < 600);

    const auto dom = browse(bench, "--dump-dom");
    CHECK(dom.find("data-script-errors=\"yes\"") == std::string::npos);
    CHECK_THAT(dom, Contains(before["ecus"][0]["model"].get<std::string>()));
    CHECK_THAT(dom, Contains("2127.9"));
    CHECK_THAT(dom, Contains("none since the service started"));
    CHECK_THAT(dom, !Contains("NaN"));
}

TEST_CASE("http: after a restart the panel map keeps every tracked inverter, as not reporting") {
    WebBench bench;
    REQUIRE(test::upload(bench.service->port(), test::captured_upload()) == "10120240206111714");
    const auto before = json::parse(test::http_get(bench.http_port, "/api/status").body);
    REQUIRE(before["ecus"][0]["inverters"].size() == 2);
    for (const auto& inverter : before["ecus"][0]["inverters"])
        CHECK(inverter["reporting"] == true); // listed by the upload, with its values
    bench.restart();
    const auto status = json::parse(test::http_get(bench.http_port, "/api/status").body);
    check_status_schema(status);
    REQUIRE(status["ecus"].size() == 1);
    const auto& inverters = status["ecus"][0]["inverters"];
    REQUIRE(inverters.size() == 2);
    std::map<std::string, std::size_t> channels;
    for (const auto& inverter : inverters) {
        CHECK(inverter["reporting"] == false);
        channels[inverter["uid"]] = inverter["channels"].size();
    }
    CHECK(channels == std::map<std::string, std::size_t>{{"408000111178", 2}, {"806000011223", 4}});
    // Unknown values are not reported as zeros.
    const auto metrics = test::http_get(bench.http_port, "/metrics").body;
    CHECK_THAT(metrics, !Contains("ecu2mqtt_inverter_temperature_celsius{"));
    CHECK_THAT(metrics, !Contains("ecu2mqtt_channel_power_watts{"));

    const auto dom = browse(bench, "--dump-dom");
    CHECK(dom.find("data-script-errors=\"yes\"") == std::string::npos);
    CHECK_THAT(dom, Contains("data-tiles=\"6\""));
    CHECK_THAT(dom, Contains("data-inverters=\"2\""));
    CHECK_THAT(dom, Contains("806000011223 \u00b7 QS1 \u00b7 not in the last upload"));
}

namespace {
json status_once_dns_checked(const WebBench& bench) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        auto status = json::parse(test::http_get(bench.http_port, "/api/status").body);
        if (status["dns"]["checked"] == true)
            return status;
        std::this_thread::sleep_for(100ms);
    }
    FAIL("the DNS check gave no verdict within 10 s");
    return {};
}
} // namespace

TEST_CASE("http: in a container the DNS check is amber until told the host's address") {
    // Listening on 127.0.0.2 alone, "localhost" (127.0.0.1) is not where ECUs reach the service;
    // Podman marks a container with "container" in the environment.
    WebBench untold({"--listen", "127.0.0.2"}, {"container=podman"});
    const auto amber = status_once_dns_checked(untold);
    CHECK(amber["dns"]["verdict"] == "unknown");
    CHECK(amber["dns"]["points_here"] == false);
    CHECK_THAT(amber["dns"]["message"].get<std::string>(),
               Contains("Cannot tell from inside a container"));
    const auto dom = browse(untold, "--dump-dom");
    CHECK_THAT(dom, Contains("class=\"check warn\" id=\"dns-check\""));

    WebBench told({"--listen", "127.0.0.2", "--advertised-address", "127.0.0.1"},
                  {"container=podman"});
    const auto green = status_once_dns_checked(told);
    CHECK(green["dns"]["verdict"] == "ok");
    CHECK(green["dns"]["points_here"] == true);
    // Outside a container the same answer is "wrong": a unit test covers it, since the machine
    // running the tests may itself be a container.
}

TEST_CASE("http: promtool accepts the metrics") {
    WebBench bench;
    REQUIRE(test::upload(bench.service->port(), test::captured_upload()).size() == 17);
    const auto metrics_file = bench.dir / "metrics.txt";
    std::ofstream(metrics_file) << test::http_get(bench.http_port, "/metrics").body;
    // promtool reads the metrics on stdin.
    const auto report = bench.dir / "promtool.txt";
    const int status =
        run({"/bin/sh", "-c", std::string(PROMTOOL) + " check metrics < " + metrics_file.string()},
            report);
    INFO(test::read_file(report.string()));
    CHECK(status == 0);
}

TEST_CASE("http: markup in an upload's unknown fields is shown as text") {
    WebBench bench;
    auto spec = test::captured_upload_spec();
    spec.inverters[0].field_28_48 = "<script>x()</script>";
    REQUIRE(test::upload(bench.service->port(), test::build_upload(spec)).size() == 17);
    const auto page = test::http_get(bench.http_port, "/").body;
    CHECK_THAT(page, Contains("\\u003cscript\\u003ex()\\u003c/script\\u003e"));
    CHECK(page.find("<script>x()") == std::string::npos);
    CHECK(page.find("</script>\"") == std::string::npos);

    // In a browser: shown as text, and nothing ran or was blocked (either would be logged).
    const auto dom = browse(bench, "--dump-dom");
    CHECK_THAT(dom, Contains("data-rendered="));
    CHECK_THAT(dom, Contains("&lt;script&gt;x()&lt;/script&gt;"));
    CHECK(dom.find(":CONSOLE") == std::string::npos);
}

TEST_CASE("http: oversized and slow requests are refused while the ECU stays answered") {
    WebBench bench({"--http-timeout", "1"});
    test::TcpClient slow(bench.http_port, 5s);
    slow.send("GET / HTTP/1.1\r\nHost: x\r\n"); // and never the end of the headers
    const auto oversized =
        test::http_get(bench.http_port, "/", "X-Big: " + std::string(64 * 1024, 'a') + "\r\n");
    CHECK(oversized.status == 431);
    CHECK(test::upload(bench.service->port(), test::captured_upload()).size() == 17);
    const auto start = std::chrono::steady_clock::now();
    CHECK(slow.closed_by_peer());
    CHECK(std::chrono::steady_clock::now() - start < 3s);
    CHECK(test::upload(bench.service->port(), test::captured_upload()).size() == 17);
}

TEST_CASE("http: --no-http serves nothing, and a bad --http-listen exits 2") {
    {
        WebBench bench({"--no-http"});
        CHECK_THROWS(test::TcpClient(bench.http_port));
    }
    const auto dir = test::make_temp_dir("ecu2mqtt-http-bad");
    const int status = run({ECU2MQTT_BINARY, "--http-listen", "nowhere"}, dir / "out.txt");
    CHECK(status == 2);
    CHECK_THAT(test::read_file((dir / "out.txt").string()),
               Contains("--http-listen: expected ADDR:PORT"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("http: the add-on answers only the ingress proxy") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-http-addon");
    std::ofstream(dir / "options.json") << json{{"mqtt_url", broker.url()}}.dump();
    const auto ecu_port = test::free_port(), http_port = test::free_port();
    const std::vector<std::string> env{
        "ECU2MQTT_ADDON_OPTIONS=" + (dir / "options.json").string(),
        "ECU2MQTT_STATE_DIR=" + (dir / "data").string(), "ECU2MQTT_LISTEN=127.0.0.1",
        "ECU2MQTT_PORTS=" + std::to_string(ecu_port),
        "ECU2MQTT_HTTP_LISTEN=127.0.0.1:" + std::to_string(http_port)};
    {
        // As installed: only the Supervisor's 172.30.32.2 is admitted, so loopback is not.
        test::ChildProcess addon({ECU2MQTT_BINARY, "--addon"}, (dir / "refusing.log").string(),
                                 env);
        REQUIRE(addon.wait_for_output("event=ready", 10s));
        CHECK(test::http_get(http_port, "/").status == 0);
        CHECK(test::upload(ecu_port, test::captured_upload()).size() == 17);
    }
    {
        auto admitting = env;
        admitting.push_back("ECU2MQTT_HTTP_ALLOW_PEERS=127.0.0.1");
        test::ChildProcess addon({ECU2MQTT_BINARY, "--addon"}, (dir / "admitting.log").string(),
                                 admitting);
        REQUIRE(addon.wait_for_output("event=ready", 10s));
        const auto page =
            test::http_get(http_port, "/", "X-Ingress-Path: /api/hassio_ingress/abc\r\n");
        CHECK(page.status == 200);
        CHECK_THAT(page.body, Contains("<base href=\"/api/hassio_ingress/abc/\">"));
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("http: a real browser renders the page after an hour of simulated uploads") {
    WebBench bench;
    const auto sim_out = bench.dir / "sim.json";
    REQUIRE(run({ECU2MQTT_SIM_BINARY, "--ports", std::to_string(bench.service->port()), "--models",
                 "806,408", "--start",
                 test::today_utc().substr(0, 4) + "-" + test::today_utc().substr(4, 2) + "-" +
                     test::today_utc().substr(6, 2) + "T11:00:00",
                 "--hours", "1"},
                sim_out) == 0);
    CHECK_THAT(test::read_file(sim_out.string()), Contains("\"unanswered\":0"));

    const auto dom = browse(bench, "--dump-dom");
    CHECK_THAT(dom, Contains("data-rendered=")); // the script ran to its end
    CHECK(dom.find("data-script-errors=\"yes\"") == std::string::npos);
    CHECK(dom.find(":CONSOLE") == std::string::npos); // nothing logged to the console
    CHECK_THAT(dom, Contains("ECU 216000000001"));
    CHECK_THAT(dom, Contains("806000000000"));
    CHECK_THAT(dom, Contains("408000000001"));
    CHECK_THAT(dom, Contains("127.0.0.1:"));
    CHECK_THAT(dom, Contains("<polyline class=\"line\""));

    const auto screenshot = std::filesystem::path(SCREENSHOT_FILE);
    std::filesystem::remove(screenshot);
    browse(bench, "--screenshot=" + screenshot.string());
    const auto png = test::read_file(screenshot.string());
    CHECK(png.starts_with("\x89PNG"));
    CHECK(png.size() > 20'000);
}

namespace {

// The sum of one numeric attribute over every element of the DOM that has it.
long sum_of_attribute(const std::string& dom, const std::string& attribute) {
    long sum = 0;
    const std::string key = " " + attribute + "=\"";
    for (auto at = dom.find(key); at != std::string::npos; at = dom.find(key, at + 1))
        sum += std::stol(dom.substr(at + key.size()));
    return sum;
}

} // namespace

TEST_CASE("http: 3 ECUs x 25 mixed inverters fit two screens at 1280 px, every channel on the "
          "map, no console error") {
    WebBench bench;
    const auto sim_out = bench.dir / "sim.json";
    const auto today = test::today_utc();
    REQUIRE(
        run({ECU2MQTT_SIM_BINARY, "--ports", std::to_string(bench.service->port()), "--ecus", "3",
             "--inverters", "25", "--models", "806,408,501", "--start",
             today.substr(0, 4) + "-" + today.substr(4, 2) + "-" + today.substr(6, 2) + "T11:00:00",
             "--hours", "1"},
            sim_out, 120s) == 0);
    CHECK_THAT(test::read_file(sim_out.string()), Contains("\"unanswered\":0"));
    const auto status = json::parse(test::http_get(bench.http_port, "/api/status").body);
    REQUIRE(status["ecus"].size() == 3);
    long inverters = 0, channels = 0;
    std::set<std::string> models;
    for (const auto& ecu : status["ecus"])
        for (const auto& inverter : ecu["inverters"]) {
            ++inverters;
            channels += static_cast<long>(inverter["channels"].size());
            models.insert(inverter["model"].get<std::string>());
        }
    CHECK(inverters == 75);
    CHECK(models == std::set<std::string>{"QS1", "YC600", "YC1000"});

    // 800 px is a laptop's screen; the page's folds are closed as it first shows.
    const auto dom = browse(bench, "--dump-dom", "1280,800");
    CHECK_THAT(dom, Contains("data-rendered="));
    CHECK(dom.find("data-script-errors=\"yes\"") == std::string::npos);
    CHECK(dom.find(":CONSOLE") == std::string::npos);
    CHECK(dom.find(" open=\"\"") == std::string::npos);
    const auto height = sum_of_attribute(dom, "data-height");
    INFO("document height " << height);
    CHECK(height > 800);
    CHECK(height < 2 * 800);
    CHECK(sum_of_attribute(dom, "data-inverters") == 75);
    CHECK(sum_of_attribute(dom, "data-tiles") == channels);

    // The README's screenshot: docs/status-page.png is copied from it.
    const auto screenshot =
        std::filesystem::path(SCREENSHOT_FILE).parent_path() / "status-page-3x25.png";
    std::filesystem::remove(screenshot);
    browse(bench, "--screenshot=" + screenshot.string(), "1280," + std::to_string(height));
    const auto png = test::read_file(screenshot.string());
    CHECK(png.starts_with("\x89PNG"));
    CHECK(png.size() > 50'000);
}

TEST_CASE("http: a tile pointed at stays shown across the page's refreshes, from its link") {
    WebBench bench;
    REQUIRE(test::upload(bench.service->port(), test::captured_upload()).size() == 17);
    // What a tap on channel 3 of the QS1 leaves in the address; two refreshes follow.
    const auto dom =
        browse(bench, "--dump-dom", "1280,1240", "/#tile=216000064136%2F806000011223%2F3", 11000);
    CHECK(dom.find("data-script-errors=\"yes\"") == std::string::npos);
    CHECK_THAT(dom, Contains("data-renders=\"3\""));
    CHECK_THAT(dom, Contains("class=\"tile selected\" x="));
    CHECK(dom.find("tile selected") == dom.rfind("tile selected")); // that tile only
    CHECK_THAT(dom, Contains("<div class=\"detail muted\">inverter 806000011223 (QS1) \u00b7 "
                             "channel 3 \u00b7 "));
}

} // namespace test_http_integration
