// Telemetry and the three renderers (page, metrics, JSON), from hand-built and decoded uploads.
#include "ecu2mqtt/app/service.hpp"
#include "ecu2mqtt/core/telemetry.hpp"
#include "ecu2mqtt/http/dns_check.hpp"
#include "ecu2mqtt/http/http_server.hpp"
#include "ecu2mqtt/http/status_render.hpp"
#include "ecu2mqtt/protocol/decoder.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;
using Catch::Contains;

namespace test_status_render {
namespace {

const auto kStart = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));

RealtimeUpload decoded(const std::string& bytes) {
    const auto result = decode_message(bytes);
    REQUIRE(decoded_message(result));
    return std::get<RealtimeUpload>(*decoded_message(result));
}

// The capture as the service sees it: from 192.168.1.20 on port 8995, answered by the usual rule.
StatusSnapshot after_captured_upload() {
    Telemetry telemetry("9.9.9", kStart);
    telemetry.on_upload(decoded(test::captured_upload()), "192.168.1.20:41234", 8995,
                        kStart + std::chrono::seconds(30));
    telemetry.on_reply("216000064136", "upload-timestamp", "10120240206111714");
    return telemetry.snapshot(kStart + std::chrono::seconds(90));
}

std::string metric_line(const std::string& metrics, const std::string& series) {
    const auto at = metrics.find("\n" + series + " ");
    if (at == std::string::npos)
        return "";
    return metrics.substr(at + 1, metrics.find('\n', at + 1) - at - 1);
}

} // namespace

TEST_CASE("telemetry: the captured upload becomes the ECU's snapshot") {
    const auto s = after_captured_upload();
    REQUIRE(s.ecus.size() == 1);
    const auto& ecu = s.ecus[0];
    CHECK(ecu.id == "216000064136");
    CHECK(ecu.model == "ECU-R");
    CHECK(ecu.peer_address == "192.168.1.20");
    CHECK(ecu.peer_port == 41234);
    CHECK(ecu.local_port == 8995);
    CHECK(ecu.ecu_timestamp == "2024-02-06T11:22:14");
    CHECK(ecu.reply == "10120240206111714");
    CHECK(ecu.power_w == Approx(190));
    CHECK(ecu.lifetime_energy_kwh == Approx(2127.9));
    REQUIRE(ecu.inverters.size() == 2);
    CHECK(ecu.inverters[0].uid == "408000111178");
    CHECK(ecu.inverters[1].channels.size() == 4);
    CHECK(ecu.power_curve.size() == 1);
    CHECK(ecu.power_curve[0].second_of_day == 11 * 3600 + 22 * 60 + 14);
    CHECK(s.counters.uploads.at({"216000064136", 8995}) == 1);
    CHECK(s.counters.replies.at("upload-timestamp") == 1);
}

TEST_CASE("telemetry: a late upload adds its point but does not replace newer values") {
    Telemetry telemetry("1", kStart);
    auto spec = test::captured_upload_spec();
    spec.timestamp = "20240621120000";
    spec.centiwatts = 50000;
    telemetry.on_upload(decoded(test::build_upload(spec)), "10.0.0.2:1000", 8995, kStart);
    spec.timestamp = "20240621115500";
    spec.centiwatts = 40000;
    telemetry.on_upload(decoded(test::build_upload(spec)), "10.0.0.2:1001", 8996, kStart);
    auto ecu = telemetry.snapshot(kStart).ecus.at(0);
    CHECK(ecu.power_w == Approx(500));
    CHECK(ecu.ecu_timestamp == "2024-06-21T12:00:00");
    REQUIRE(ecu.power_curve.size() == 2);
    CHECK(ecu.power_curve[0].power_w == Approx(400)); // in time order
    CHECK(ecu.peer_port == 1001);                     // the connection is still the last one

    spec.timestamp = "20240622060000";
    telemetry.on_upload(decoded(test::build_upload(spec)), "10.0.0.2:1002", 8995, kStart);
    ecu = telemetry.snapshot(kStart).ecus.at(0);
    CHECK(ecu.power_curve.size() == 1); // a new day on the ECU's clock
}

TEST_CASE("telemetry: ECUs beyond the limit are counted together, not kept") {
    Telemetry telemetry("1", kStart);
    auto spec = test::captured_upload_spec();
    for (std::size_t i = 0; i < Telemetry::kMaxEcus + 5; ++i) {
        spec.ecu_id = "2160" + test::zero_padded(static_cast<long long>(i), 8);
        telemetry.on_upload(decoded(test::build_upload(spec)), "10.0.0.2:1000", 8995, kStart);
    }
    const auto s = telemetry.snapshot(kStart);
    CHECK(s.ecus.size() == Telemetry::kMaxEcus);
    CHECK(s.counters.uploads.size() == Telemetry::kMaxEcus + 1);
    CHECK(s.counters.uploads.at({"other", 8995}) == 5);
}

TEST_CASE("telemetry: uploads set aside are counted under their verdict, not shown") {
    Telemetry telemetry("1", kStart);
    telemetry.on_upload(decoded(test::captured_upload()), "10.0.0.2:1000", 8995, kStart);
    for (const char* verdict :
         {"late", "repeat", "clock_suspect", "counter_suspect", "not_kept", "clock_suspect"})
        telemetry.on_upload_set_aside("216000064136", 8995, verdict);
    telemetry.on_upload_set_aside("216000099999", 8996, "clock_suspect");
    const auto s = telemetry.snapshot(kStart);
    CHECK(s.ecus.size() == 1); // an ECU with nothing but set-aside uploads has nothing to show
    CHECK(s.counters.uploads.at({"216000064136", 8995, "live"}) == 1);
    CHECK(s.counters.uploads.at({"216000064136", 8995, "late"}) == 1);
    CHECK(s.counters.uploads.at({"216000064136", 8995, "clock_suspect"}) == 2);
    CHECK(s.counters.uploads.at({"216000064136", 8995, "not_kept"}) == 1);
    CHECK(s.counters.uploads.at({"216000099999", 8996, "clock_suspect"}) == 1);
    std::uint64_t total = 0;
    for (const auto& [key, count] : s.counters.uploads)
        total += count;
    CHECK(total == 8);
    const auto m = prometheus_metrics(s);
    CHECK(metric_line(m, "ecu2mqtt_uploads_total{ecu=\"216000064136\",port=\"8995\",verdict="
                         "\"clock_suspect\"}")
              .ends_with(" 2"));
}

TEST_CASE("the verdict label of an upload's handling") {
    UploadHandling h;
    h.live = true;
    CHECK(upload_verdict_label(h) == "live");
    h.live = false;
    CHECK(upload_verdict_label(h) == "late");
    h.duplicate = true;
    CHECK(upload_verdict_label(h) == "repeat");
    h = {};
    h.clock_suspect = true;
    CHECK(upload_verdict_label(h) == "clock_suspect");
    h = {};
    h.counter_suspect = true;
    CHECK(upload_verdict_label(h) == "counter_suspect");
    h = {};
    h.handled = false;
    CHECK(upload_verdict_label(h) == "not_kept");
    h = {};
    h.untracked = true;
    CHECK(upload_verdict_label(h) == "not_kept");
}

TEST_CASE("telemetry: keeps the last 50 warnings and errors, not info") {
    Telemetry telemetry("1", kStart);
    telemetry.on_log(LogLevel::Info, "level=info event=upload\n");
    for (int i = 0; i < 60; ++i)
        telemetry.on_log(i % 2 ? LogLevel::Warn : LogLevel::Error,
                         "event=problem n=" + std::to_string(i) + "\n");
    const auto problems = telemetry.snapshot(kStart).recent_problems;
    REQUIRE(problems.size() == 50);
    CHECK(problems.front().line == "event=problem n=10");
    CHECK(problems.back().line == "event=problem n=59");
    CHECK(problems.back().level == "warn");
}

TEST_CASE("JSON status: the documented keys with the upload's values") {
    const auto j = status_json(after_captured_upload());
    CHECK(j["version"] == "9.9.9");
    CHECK(j["uptime_s"] == 90);
    const auto& ecu = j["ecus"][0];
    CHECK(ecu["id"] == "216000064136");
    CHECK(ecu["peer_address"] == "192.168.1.20");
    CHECK(ecu["last_upload_age_s"] == 60);
    CHECK(ecu["reply_rule"] == "upload-timestamp");
    CHECK(ecu["today_energy_kwh"].is_null());
    CHECK(ecu["clock_offset_s"].is_null());
    CHECK(ecu["inverters"][1]["channels"][2]["power_w"] == 45);
    CHECK(ecu["inverters"][0]["unknown"].contains("bytes_28_48"));
    CHECK(ecu["power_curve"][0][1] == 190);
    CHECK(j["counters"]["uploads"][0]["port"] == 8995);
    CHECK(j["counters"]["uploads"][0]["verdict"] == "live");
    CHECK(j["mqtt"]["connected"] == false);
    CHECK(j["dns"]["checked"] == false);
}

TEST_CASE("metrics: Prometheus names, labels and the upload's values") {
    const auto m = prometheus_metrics(after_captured_upload());
    CHECK(metric_line(
              m, "ecu2mqtt_uploads_total{ecu=\"216000064136\",port=\"8995\",verdict=\"live\"}") ==
          "ecu2mqtt_uploads_total{ecu=\"216000064136\",port=\"8995\",verdict=\"live\"} 1");
    CHECK(metric_line(m, "ecu2mqtt_ecu_power_watts{ecu=\"216000064136\"}").ends_with(" 190"));
    CHECK(metric_line(m, "ecu2mqtt_ecu_lifetime_energy_joules{ecu=\"216000064136\"}")
              .ends_with(" 7660440000"));
    CHECK(metric_line(m, "ecu2mqtt_channel_voltage_volts{ecu=\"216000064136\",inverter="
                         "\"806000011223\",channel=\"2\"}")
              .ends_with(" 34.2"));
    CHECK(metric_line(m, "ecu2mqtt_inverter_temperature_celsius{ecu=\"216000064136\",inverter="
                         "\"408000111178\"}")
              .ends_with(" 13"));
    CHECK(metric_line(m, "ecu2mqtt_ecu_last_upload_age_seconds{ecu=\"216000064136\"}")
              .ends_with(" 60"));
    CHECK(m.find("ecu2mqtt_ecu_today_energy_joules{") == std::string::npos); // unknown: absent
    CHECK_THAT(m, Contains("# TYPE ecu2mqtt_replies_total counter"));
}

TEST_CASE("metrics: an ECU with no trustworthy reading yet shows no power or lifetime") {
    // Its only upload was clock-suspect: the ledger knows of it, but of no counter to show.
    Telemetry telemetry("9.9.9", kStart);
    telemetry.set_availability("216000064136", true);
    const auto snapshot = telemetry.snapshot(kStart + std::chrono::seconds(90));
    const auto m = prometheus_metrics(snapshot);
    CHECK(metric_line(m, "ecu2mqtt_ecu_online{ecu=\"216000064136\"}").ends_with(" 1"));
    CHECK(m.find("ecu2mqtt_ecu_lifetime_energy_joules{") == std::string::npos);
    CHECK(m.find("ecu2mqtt_ecu_power_watts{") == std::string::npos);
    CHECK(m.find("ecu2mqtt_ecu_last_upload_age_seconds{") == std::string::npos);
    CHECK(status_json(snapshot)["ecus"][0]["last_upload_age_s"].is_null());
}

TEST_CASE("a database that cannot be written: the JSON and the metrics say so") {
    auto s = after_captured_upload();
    s.store = {
        "/data/ecu2mqtt.db", 12, 3, false, "disk I/O error: database or disk is full", {}, 0};
    const auto j = status_json(s);
    CHECK(j["store"]["file"] == "/data/ecu2mqtt.db");
    CHECK(j["store"]["writable"] == false);
    CHECK(j["store"]["failed_writes"] == 3);
    CHECK(j["store"]["last_error"] == "disk I/O error: database or disk is full");
    const auto m = prometheus_metrics(s);
    CHECK(metric_line(m, "ecu2mqtt_store_writable") == "ecu2mqtt_store_writable 0");
    CHECK(metric_line(m, "ecu2mqtt_store_failed_writes_total") ==
          "ecu2mqtt_store_failed_writes_total 3");
    CHECK(metric_line(m, "ecu2mqtt_store_commits_total") == "ecu2mqtt_store_commits_total 12");
    s.store.writable = true;
    CHECK(metric_line(prometheus_metrics(s), "ecu2mqtt_store_writable") ==
          "ecu2mqtt_store_writable 1");
}

TEST_CASE("little free space where the database is: the JSON and the metrics say so") {
    auto s = after_captured_upload();
    s.store.low_space_bytes = 64 << 20;
    CHECK(status_json(s)["store"]["free_bytes"].is_null()); // not known: no warning
    CHECK(status_json(s)["store"]["low_space"] == false);
    CHECK(prometheus_metrics(s).find("ecu2mqtt_store_free_bytes") == std::string::npos);

    s.store.free_bytes = 10 << 20;
    const auto j = status_json(s);
    CHECK(j["store"]["free_bytes"] == 10 << 20);
    CHECK(j["store"]["low_space_bytes"] == 64 << 20);
    CHECK(j["store"]["low_space"] == true);
    CHECK(j["store"]["writable"] == true);
    const auto m = prometheus_metrics(s);
    CHECK(metric_line(m, "ecu2mqtt_store_free_bytes") == "ecu2mqtt_store_free_bytes 10485760");
    CHECK(metric_line(m, "ecu2mqtt_store_low_space_bytes") ==
          "ecu2mqtt_store_low_space_bytes 67108864");
    s.store.free_bytes = 65 << 20;
    CHECK(status_json(s)["store"]["low_space"] == false);
}

TEST_CASE("no password reaches the JSON or the page, even one written into the broker URL") {
    StatusSnapshot s;
    s.mqtt.broker = "mqtt://solar:s3cret@broker.lan:1883";
    CHECK(status_json(s)["mqtt"]["broker"] == "mqtt://broker.lan:1883");
    CHECK(status_page(s, "", "n").find("s3cret") == std::string::npos);
    s.mqtt.broker = "mqtt://broker.lan:1883";
    CHECK(status_json(s)["mqtt"]["broker"] == "mqtt://broker.lan:1883");
}

TEST_CASE("metrics: label values from an ECU are escaped") {
    StatusSnapshot s;
    EcuSnapshot ecu;
    ecu.id = "a\"b\\c\nd\x01";
    s.ecus.push_back(ecu);
    CHECK_THAT(prometheus_metrics(s), Contains("{ecu=\"a\\\"b\\\\c\\nd?\"}"));
}

TEST_CASE("page: ECU data is embedded only as script-safe JSON, never as markup") {
    Telemetry telemetry("1", kStart);
    auto spec = test::captured_upload_spec();
    spec.inverters[0].field_28_48 = "<script>x()</script>";
    telemetry.on_upload(decoded(test::build_upload(spec)), "10.0.0.9:5000", 8995, kStart);
    const auto page = status_page(telemetry.snapshot(kStart), "", "n0nce");
    CHECK_THAT(page, Contains("\\u003cscript\\u003ex()\\u003c/script\\u003e"));
    CHECK(page.find("<script>x()") == std::string::npos);
    // The page's only scripts: the JSON island and the one carrying the nonce.
    std::size_t scripts = 0;
    for (auto at = page.find("<script"); at != std::string::npos; at = page.find("<script", at + 1))
        ++scripts;
    CHECK(scripts == 2);
    CHECK_THAT(page, Contains("<script nonce=\"n0nce\">"));
    CHECK(page.find("<base") == std::string::npos);
    CHECK_THAT(page, Contains("fetch('api/status'")); // relative: works under any prefix
}

TEST_CASE("page: the ingress path becomes the base of relative URLs") {
    const auto page = status_page(StatusSnapshot{}, "/api/hassio_ingress/abc-123", "n");
    CHECK_THAT(page, Contains("<base href=\"/api/hassio_ingress/abc-123/\">"));
    CHECK(checked_ingress_path("/api/hassio_ingress/abc-123/") == "/api/hassio_ingress/abc-123");
    CHECK(checked_ingress_path("/x\"><script>") == "");
    CHECK(checked_ingress_path("//evil.example") == "");
    CHECK(checked_ingress_path("https://evil.example/") == "");
}

TEST_CASE("escaping helpers") {
    CHECK(html_escape("<a href=\"x\">'&'</a>") ==
          "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    CHECK(script_safe_json(nlohmann::json{{"k", "</script>&\xe2\x80\xa8"}}) ==
          "{\"k\":\"\\u003c/script\\u003e\\u0026\\u2028\"}");
    CHECK(script_safe_json(nlohmann::json("\xff")) == "\"\xef\xbf\xbd\""); // not UTF-8: replaced
}

TEST_CASE("DNS verdict: here, elsewhere, unresolved") {
    const std::vector<std::string> host{"127.0.0.1", "192.168.1.5", "::1"};
    auto here = judge_dns("ecu.apsystemsema.com", {"192.168.1.5"}, "", host, "0.0.0.0");
    CHECK(here.points_here);
    CHECK_THAT(here.message, Contains("192.168.1.5, this host"));

    auto elsewhere = judge_dns("ecu.apsystemsema.com", {"3.124.1.1"}, "", host, "0.0.0.0");
    CHECK_FALSE(elsewhere.points_here);
    CHECK_THAT(elsewhere.message, Contains("not to this host"));
    CHECK_THAT(elsewhere.message,
               Contains("point ecu.apsystemsema.com at this host (192.168.1.5)"));

    // Listening everywhere, loopback is not an address an ECU could reach.
    CHECK_FALSE(judge_dns("n", {"127.0.0.1"}, "", host, "0.0.0.0").points_here);
    CHECK(judge_dns("n", {"127.0.0.1"}, "", host, "127.0.0.1").points_here);

    auto unresolved = judge_dns("n", {}, "Host not found", host, "192.168.1.5");
    CHECK_FALSE(unresolved.points_here);
    CHECK_THAT(unresolved.message, Contains("does not resolve from here (Host not found)"));
}

TEST_CASE("DNS verdict in a container: the advertised address, or amber when it is not known") {
    // A container on Docker's bridge network sees only its own addresses; the host (where the
    // ECU's DNS correctly points) is 192.168.1.10.
    const std::vector<std::string> container{"127.0.0.1", "172.18.0.3"};
    DnsCheckInput in{"ecu.apsystemsema.com", {"192.168.1.10"}, "", container, "0.0.0.0", {}, true};
    auto untold = judge_dns(in);
    CHECK(untold.verdict == "unknown");
    CHECK_FALSE(untold.points_here);
    CHECK_THAT(untold.message, Contains("Cannot tell from inside a container"));
    CHECK_THAT(untold.message, Contains("--advertised-address"));
    CHECK_THAT(untold.message, !Contains("172.18.0.3")); // never the wrong fix

    in.advertised_addresses = {"192.168.1.10"};
    auto told = judge_dns(in);
    CHECK(told.verdict == "ok");
    CHECK(told.points_here);
    CHECK_THAT(told.message, Contains("192.168.1.10, this host"));

    in.resolved = {"3.124.1.1"}; // still the cloud: certainly wrong, and the fix names the host
    auto wrong = judge_dns(in);
    CHECK(wrong.verdict == "wrong");
    CHECK_THAT(wrong.message, Contains("point ecu.apsystemsema.com at this host (192.168.1.10)"));
    CHECK_THAT(wrong.message, !Contains("172.18.0.3"));

    in.advertised_addresses.clear(); // host networking: the container sees the host's addresses
    in.host_addresses = {"127.0.0.1", "192.168.1.10"};
    in.resolved = {"192.168.1.10"};
    CHECK(judge_dns(in).verdict == "ok");

    in.resolved.clear(); // not resolving at all is wrong anywhere
    in.resolve_error = "Host not found";
    CHECK(judge_dns(in).verdict == "wrong");

    // On the host itself, outside a container, the old verdicts stand.
    CHECK(judge_dns("n", {"3.124.1.1"}, "", {"192.168.1.5"}, "0.0.0.0").verdict == "wrong");
}

TEST_CASE("listen endpoints") {
    CHECK(parse_listen_endpoint("127.0.0.1:8099") ==
          std::pair<std::string, std::uint16_t>{"127.0.0.1", 8099});
    CHECK(parse_listen_endpoint("[::]:80") == std::pair<std::string, std::uint16_t>{"::", 80});
    CHECK_THROWS(parse_listen_endpoint("8099"));
    CHECK_THROWS(parse_listen_endpoint("localhost:8099"));
    CHECK_THROWS(parse_listen_endpoint("::1:8099"));
    CHECK_THROWS(parse_listen_endpoint("0.0.0.0:70000"));
    CHECK_THROWS(parse_listen_endpoint("0.0.0.0:"));
}

} // namespace test_status_render
