// End-to-end latency: from the last byte of an upload to its state message at a subscriber on a
// real Mosquitto over loopback; plus the service's idle RSS and binary size.
#include "ecu2mqtt/protocol/local_time.hpp"
#include "support/mqtt_probe.hpp"
#include "support/service_process.hpp"
#include "support/upload_builder.hpp"
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace std::chrono_literals;

namespace {

long rss_kib(pid_t pid, const char* field) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.starts_with(field))
            return std::stol(line.substr(std::strlen(field)));
    return -1;
}

// User + system CPU the process has used so far, in microseconds.
double cpu_us(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // Fields after the command name (which may hold spaces) start after its closing ')'.
    std::istringstream rest(text.substr(text.rfind(')') + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i)
        if (i == 14 || i == 15) // utime, stime
            ticks += std::stod(field);
    return ticks * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

} // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 500;
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-bench");
    // Enough connection slots for the 1,000 ECUs below to arrive at the same moment.
    test::ServiceProcess service(
        broker.url(), dir / "state",
        {"--log-level", "info", "--max-connections", "1100", "--max-ecus", "1100"});
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const long idle_rss = rss_kib(service.process_id(), "VmRSS:");

    test::MqttProbe probe(broker.url(), "ecu2mqtt/216000064136/state");
    std::vector<double> latencies_us;
    auto spec = test::captured_upload_spec();
    const double cpu_before_rounds = cpu_us(service.process_id());
    for (int i = 0; i < rounds; ++i) {
        // A minute apart: each upload is newer than the last, so each one becomes the state.
        spec.timestamp =
            ecu2mqtt::format_compact(ecu2mqtt::add_seconds({2024, 2, 6, 6, 0, 0}, 60LL * i));
        spec.decikwh = 21279 + i;
        const std::string msg = test::build_upload(spec);
        const std::string expected_energy =
            "\"lifetime_energy_kwh\":" + std::to_string((21279 + i) / 10) + "." +
            std::to_string((21279 + i) % 10);
        probe.clear();
        test::TcpClient ecu(service.port());
        ecu.send(msg.substr(0, msg.size() - 1));
        const auto last_byte = std::chrono::steady_clock::now();
        ecu.send(msg.substr(msg.size() - 1));
        const auto got = probe.wait_for_payload(
            "ecu2mqtt/216000064136/state",
            [&](const std::string& p) { return p.find(expected_energy) != std::string::npos; },
            std::chrono::seconds(5));
        if (!got) {
            std::fprintf(stderr, "round %d: no state message\n", i);
            return 1;
        }
        latencies_us.push_back(
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - last_byte)
                .count());
        ecu.receive(17);
    }
    const long peak_rss = rss_kib(service.process_id(), "VmHWM:");
    const double cpu_per_upload = (cpu_us(service.process_id()) - cpu_before_rounds) / rounds;

    // 1,000 simulated ECUs with four QS1 each, all uploading at the same moment; done when a
    // subscriber has every ECU's state and every device's discovery config.
    constexpr int kBurstEcus = 1000;
    constexpr int kBurstInverters = 4;
    test::MqttProbe burst_probe(broker.url(), "ecu2mqtt/+/state", "burst");
    burst_probe.subscribe("homeassistant/device/+/config");
    const double cpu_before_burst = cpu_us(service.process_id());
    const auto burst_start = std::chrono::steady_clock::now();
    test::ChildProcess sim({ECU2MQTT_SIM_BINARY, "--ports", std::to_string(service.port()),
                            "--ecus", std::to_string(kBurstEcus), "--inverters",
                            std::to_string(kBurstInverters), "--models", "806", "--start",
                            "2024-06-21T12:00:00", "--hours", "0", "--timeout-ms", "60000"},
                           (dir / "sim.json").string());
    if (sim.wait_for(std::chrono::seconds(90)) != 0) {
        std::fprintf(stderr, "simulator failed: %s\n", sim.output().substr(0, 2000).c_str());
        return 1;
    }
    const auto summary = nlohmann::json::parse(sim.output());
    const auto is_burst_state = [](const test::Received& m) {
        return m.topic.starts_with("ecu2mqtt/2160") && m.topic.ends_with("/state");
    };
    const auto is_config = [](const test::Received& m) {
        return m.topic.starts_with("homeassistant/device/");
    };
    const bool all_states = burst_probe.wait_for_count(is_burst_state, kBurstEcus, 60s);
    const auto states_done = std::chrono::steady_clock::now();
    const bool all_configs =
        burst_probe.wait_for_count(is_config, kBurstEcus * (1 + kBurstInverters), 60s);
    const auto configs_done = std::chrono::steady_clock::now();
    if (!all_states || !all_configs) {
        std::fprintf(stderr, "burst: %zu states, %zu configs\n", burst_probe.count(is_burst_state),
                     burst_probe.count(is_config));
        return 1;
    }
    const long burst_peak_rss = rss_kib(service.process_id(), "VmHWM:");
    const double burst_cpu_per_upload =
        (cpu_us(service.process_id()) - cpu_before_burst) / kBurstEcus;
    const auto ms_since_burst = [&](std::chrono::steady_clock::time_point t) {
        return std::chrono::duration<double, std::milli>(t - burst_start).count();
    };

    std::printf("| measure | value |\n|---|---:|\n");
    std::printf("| uploads | %d |\n", rounds);
    std::printf("| latency p50 (last byte -> state at subscriber) | %.0f us |\n",
                percentile(latencies_us, 0.50));
    std::printf("| latency p99 | %.0f us |\n", percentile(latencies_us, 0.99));
    std::printf("| latency max | %.0f us |\n", percentile(latencies_us, 1.0));
    std::printf("| service CPU per upload (1 QS1 + captured YC600, one at a time) | %.0f us |\n",
                cpu_per_upload);
    std::printf("| idle RSS after start | %ld KiB |\n", idle_rss);
    std::printf("| peak RSS after the run | %ld KiB |\n", peak_rss);
    std::printf("| 1,000 ECUs x 4 QS1 at once: answered | %d of %d |\n",
                summary["answered"].get<int>(), summary["uploads"].get<int>());
    std::printf("| 1,000 ECUs x 4 QS1: until the last answer | %.0f ms |\n",
                summary["wall_seconds"].get<double>() * 1000);
    std::printf("| 1,000 ECUs x 4 QS1: until the last ECU state at the subscriber | %.0f ms |\n",
                ms_since_burst(states_done));
    std::printf("| 1,000 ECUs x 4 QS1: until all 5,000 device configs at the subscriber | %.0f "
                "ms |\n",
                ms_since_burst(configs_done));
    std::printf("| 1,000 ECUs x 4 QS1: service peak RSS | %ld KiB |\n", burst_peak_rss);
    std::printf("| 1,000 ECUs x 4 QS1: service CPU per upload (with 5 device configs each) | %.0f "
                "us |\n",
                burst_cpu_per_upload);
    std::printf("| binary size | %ju bytes |\n",
                static_cast<std::uintmax_t>(std::filesystem::file_size(ECU2MQTT_BINARY)));
    service.process().signal(SIGTERM);
    service.process().wait_for(std::chrono::seconds(5));
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    return 0;
}
