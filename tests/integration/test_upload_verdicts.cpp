// Every upload the real binary receives is counted once, under what became of it: the verdict
// labels of ecu2mqtt_uploads_total add up to the replies and to the `event=upload` lines.
#include "support/http_client.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/net.hpp"
#include "support/service_process.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <catch2/catch.hpp>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

using namespace std::chrono_literals;
using nlohmann::json;

namespace test_upload_verdicts {
namespace {

std::size_t occurrences(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

// The samples of one metric family, by their label text.
std::map<std::string, double> samples(const std::string& metrics, const std::string& family) {
    std::map<std::string, double> out;
    std::istringstream lines(metrics);
    std::string line;
    while (std::getline(lines, line))
        if (line.starts_with(family + "{")) {
            const auto space = line.rfind(' ');
            out[line.substr(family.size(), space - family.size())] = std::stod(line.substr(space));
        }
    return out;
}

} // namespace

TEST_CASE("counters: a run with every verdict; the verdict labels sum to the replies and to the "
          "event=upload lines") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-verdicts");
    const auto http_port = test::free_port();
    test::ServiceProcess service(
        broker.url(), dir / "state",
        {"--http-listen", "127.0.0.1:" + std::to_string(http_port), "--max-ecus", "1"});

    struct Sent {
        std::string ecu = "216000064136";
        std::int64_t ago = 0;
        long long decikwh = 0;
        std::string verdict;
    };
    const std::vector<Sent> run{
        {.ago = 50 * 60, .decikwh = 10000, .verdict = "live"},
        {.ago = 40 * 60, .decikwh = 10002, .verdict = "live"},
        {.ago = 45 * 60, .decikwh = 10001, .verdict = "late"},            // older than the newest
        {.ago = 40 * 60, .decikwh = 10002, .verdict = "repeat"},          // the same reading again
        {.ago = -3 * 3600, .decikwh = 10003, .verdict = "clock_suspect"}, // 3 h ahead
        {.ago = 35 * 60, .decikwh = 9999999, .verdict = "counter_suspect"},
        {.ago = 30 * 60, .decikwh = 10004, .verdict = "live"},
        // Beyond --max-ecus 1 (the first ECU keeps its slot with 3 readings kept): kept raw only.
        {.ecu = "216000099999", .ago = 30 * 60, .decikwh = 500, .verdict = "not_kept"},
    };
    std::map<std::string, double> expected;
    for (const auto& sent : run) {
        auto spec = test::captured_upload_spec();
        spec.ecu_id = sent.ecu;
        spec.timestamp = test::utc_stamp(sent.ago);
        spec.decikwh = sent.decikwh;
        INFO(sent.verdict);
        REQUIRE(test::upload(service.port(), test::build_upload(spec)).size() == 17);
        ++expected["{ecu=\"" + sent.ecu + "\",port=\"" + std::to_string(service.port()) +
                   "\",verdict=\"" + sent.verdict + "\"}"];
    }

    // Replies are counted before they are sent: all of them are in by now.
    const auto metrics = test::http_get(http_port, "/metrics").body;
    const auto uploads = samples(metrics, "ecu2mqtt_uploads_total");
    CHECK(uploads == expected);
    double uploads_total = 0;
    for (const auto& [labels, value] : uploads)
        uploads_total += value;
    double replies_total = 0;
    for (const auto& [labels, value] : samples(metrics, "ecu2mqtt_replies_total"))
        replies_total += value;
    CHECK(uploads_total == static_cast<double>(run.size()));
    CHECK(replies_total == uploads_total);
    CHECK(occurrences(service.log(), " event=upload ") == run.size());

    // The JSON the page renders from carries the same split.
    const auto status = json::parse(test::http_get(http_port, "/api/status").body);
    std::map<std::string, int> by_verdict;
    for (const auto& u : status["counters"]["uploads"])
        by_verdict[u["verdict"].get<std::string>()] += u["count"].get<int>();
    CHECK(by_verdict == std::map<std::string, int>{{"clock_suspect", 1},
                                                   {"counter_suspect", 1},
                                                   {"late", 1},
                                                   {"live", 3},
                                                   {"not_kept", 1},
                                                   {"repeat", 1}});
    std::filesystem::remove_all(dir);
}

} // namespace test_upload_verdicts
