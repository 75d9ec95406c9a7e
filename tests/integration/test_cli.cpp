// The ecu2mqtt binary's command line: decode, help, errors, start-up and signals.
#include "support/mosquitto_broker.hpp"
#include "support/service_process.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace std::chrono_literals;

namespace test_cli {
namespace {

struct Run {
    int status;
    std::string output;
};

Run run(std::vector<std::string> args) {
    const auto dir = test::make_temp_dir("ecu2mqtt-cli");
    args.insert(args.begin(), ECU2MQTT_BINARY);
    test::ChildProcess p(args, (dir / "out.txt").string());
    const auto status = p.wait_for(10s);
    Run r{status.value_or(-1), p.output()};
    std::filesystem::remove_all(dir);
    return r;
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
    std::vector<nlohmann::json> out;
    std::stringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (!line.empty() && line.front() == '{')
            out.push_back(nlohmann::json::parse(line));
    return out;
}

} // namespace

TEST_CASE("decode prints the capture as one JSON line with the documented keys") {
    const auto r = run({"decode", test::data_path("realtime-ecu-r-yc600-qs1.txt")});
    REQUIRE(r.status == 0);
    const auto lines = json_lines(r.output);
    REQUIRE(lines.size() == 1);
    const auto& j = lines[0];
    CHECK(j["type"] == "realtime");
    CHECK(j["ecu"]["id"] == "216000064136");
    CHECK(j["ecu"]["model"] == "ECU-R");
    CHECK(j["ecu"]["timestamp"] == "2024-02-06T11:22:14");
    CHECK(j["ecu"]["power_w"] == 190.0);
    CHECK(j["ecu"]["lifetime_energy_kwh"] == 2127.9);
    CHECK(j["ecu"]["inverters_online"] == 2);
    REQUIRE(j["inverters"].size() == 2);
    const auto& qs1 = j["inverters"][1];
    for (const char* key :
         {"uid", "model_code", "model", "frequency_hz", "temperature_c", "power_w", "channels"})
        CHECK(qs1.contains(key));
    CHECK(qs1["model"] == "QS1");
    CHECK(qs1["power_w"] == 155.0);
    CHECK(qs1["channels"][2] ==
          nlohmann::json::parse(R"({"channel":3,"voltage_v":33.4,"current_a":1.4,"power_w":45.0,
                                    "unknown":{"bytes_10_15":"03569","bytes_18_20":"00"}})"));
    CHECK(j["unknown"]["bytes_10_18"] == "AAAAAAA1");
}

TEST_CASE("decode reports a bad message with its offset and still decodes the others") {
    const auto dir = test::make_temp_dir("ecu2mqtt-cli");
    const std::string good = test::captured_upload();
    std::string bad = good;
    bad[105] = 'Z'; // inside the first inverter's grid frequency
    test::UploadSpec night;
    const std::string input = good + bad + test::build_upload(night);
    std::ofstream(dir / "mixed.txt", std::ios::binary) << input;
    const auto r = run({"decode", (dir / "mixed.txt").string()});
    CHECK(r.status == 1);
    // All three decode: the second without its first inverter, whose block is reported.
    const auto lines = json_lines(r.output);
    REQUIRE(lines.size() == 3);
    CHECK(lines[1]["inverters"].size() == 1);
    CHECK(lines[1]["skipped_blocks"][0]["offset"] == 83);
    // The second message starts at byte 303; its first block at 303 + 83, its frequency field
    // at 303 + 103.
    CHECK_THAT(r.output, Catch::Contains("message at offset 303: inverter block at 386 left out: "
                                         "offset 406: expected 5 digits (grid frequency"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("decode reads stdin when no file is given") {
    const auto dir = test::make_temp_dir("ecu2mqtt-cli");
    test::ChildProcess p({"sh", "-c",
                          std::string(ECU2MQTT_BINARY) + " decode < " +
                              test::data_path("realtime-ecu-r-yc600-qs1.txt")},
                         (dir / "out.txt").string());
    CHECK(p.wait_for(10s) == 0);
    CHECK(json_lines(p.output()).size() == 1);
    std::filesystem::remove_all(dir);
}

TEST_CASE("help, version and configuration errors") {
    const auto help = run({"--help"});
    CHECK(help.status == 0);
    CHECK_THAT(help.output, Catch::Contains("--mqtt-url"));
    CHECK(run({"--version"}).status == 0);
    const auto bad = run({"--ports", "banana"});
    CHECK(bad.status == 2);
    CHECK_THAT(bad.output, Catch::Contains("--ports"));
}

TEST_CASE("a port already in use stops the start with exit status 1 and says which") {
    const auto dir = test::make_temp_dir("ecu2mqtt-cli");
    test::MosquittoBroker broker; // its port is taken
    const auto r = run({"--listen", "127.0.0.1", "--ports", std::to_string(broker.port()),
                        "--state-dir", dir.string(), "--mqtt-url", broker.url()});
    CHECK(r.status == 1);
    CHECK_THAT(r.output,
               Catch::Contains("cannot listen on 127.0.0.1:" + std::to_string(broker.port())));
    std::filesystem::remove_all(dir);
}

TEST_CASE(
    "SIGTERM and SIGINT end the service with status 0 within a second, even without a broker") {
    const auto dir = test::make_temp_dir("ecu2mqtt-cli");
    for (const int sig : {SIGTERM, SIGINT}) {
        test::ServiceProcess service("mqtt://127.0.0.1:" + std::to_string(test::free_port()),
                                     dir / "state");
        CHECK(test::upload(service.port(), test::captured_upload()) == "10120240206111714");
        const auto start = std::chrono::steady_clock::now();
        service.process().signal(sig);
        CHECK(service.process().wait_for(2s) == 0);
        CHECK(std::chrono::steady_clock::now() - start < 1s);
        CHECK_THAT(service.log(), Catch::Contains("event=stopped uploads=1"));
    }
    std::filesystem::remove_all(dir);
}

} // namespace test_cli
