// Full proxy mode against a fake EMA on loopback: relayed exactly, or the fake reply in bounded
// time when EMA is down, slow, or closes early; EMA's name resolved through a fake DNS server.
#include "ecu2mqtt/protocol/dns_message.hpp"
#include "support/loopback_server.hpp"
#include "support/mqtt_probe.hpp"
#include "support/service_process.hpp"
#include "support/store_probe.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <tuple>

using namespace std::chrono_literals;

namespace test_forwarding {
namespace {

const std::string kFakeReply = "10120240206111714";

// A stand-in for EMA: reads what the ECU sent, then answers, answers late, or closes.
class FakeEma {
  public:
    enum class Mode { Answer, Slow, CloseEarly };
    FakeEma(Mode mode, std::string reply)
        : server_(
              "END\n",
              [mode, reply = std::move(reply)](const std::string&) -> std::optional<std::string> {
                  if (mode == Mode::Slow)
                      std::this_thread::sleep_for(3s);
                  if (mode == Mode::Answer)
                      return reply;
                  return std::nullopt;
              }) {}
    std::uint16_t port() const { return server_.port(); }
    std::string received() { return server_.received(); }

  private:
    test::LoopbackServer server_;
};

// Answers every A query with 127.0.0.1, over UDP on loopback.
class FakeDns {
  public:
    FakeDns() {
        std::tie(fd_, port_) = test::bound_loopback_socket(SOCK_DGRAM);
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeDns() {
        stopping_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    std::uint16_t port() const { return port_; }
    int queries() const { return queries_; }

  private:
    void serve() {
        for (;;) {
            std::uint8_t buf[512];
            sockaddr_in from{};
            socklen_t len = sizeof from;
            const auto n =
                ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
            if (n <= 12 || stopping_)
                return;
            ++queries_;
            std::vector<std::uint8_t> answer(buf, buf + n);
            answer[2] = 0x81; // response, recursion desired
            answer[3] = 0x80; // recursion available, no error
            answer[7] = 1;    // one answer
            const std::uint8_t record[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1};
            answer.insert(answer.end(), std::begin(record), std::end(record));
            ::sendto(fd_, answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
        }
    }
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<int> queries_{0};
    std::thread thread_;
};

struct Proxy {
    Proxy(const std::string& target, std::vector<std::string> extra = {})
        : dir(test::make_temp_dir("ecu2mqtt-fwd")) {
        std::vector<std::string> args{"--forward-to-ema", target, "--ema-timeout", "1"};
        args.insert(args.end(), extra.begin(), extra.end());
        service = std::make_unique<test::ServiceProcess>(broker.url(), dir / "state", args);
    }
    ~Proxy() {
        service.reset();
        std::filesystem::remove_all(dir);
    }
    test::MosquittoBroker broker;
    std::filesystem::path dir;
    std::unique_ptr<test::ServiceProcess> service;
};

// The reply to one upload and how long the ECU waited for it.
std::pair<std::string, std::chrono::milliseconds> timed_upload(std::uint16_t port) {
    const auto start = std::chrono::steady_clock::now();
    const auto reply = test::upload(port, test::captured_upload());
    return {reply, std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)};
}

} // namespace

TEST_CASE("EMA's reply is relayed byte for byte and the upload is still published") {
    const std::string ema_says = "10120240206112000";
    FakeEma ema(FakeEma::Mode::Answer, ema_says);
    Proxy proxy("127.0.0.1:" + std::to_string(ema.port()));
    test::MqttProbe probe(proxy.broker.url(), "ecu2mqtt/216000064136/state");
    const auto [reply, waited] = timed_upload(proxy.service->port());
    CHECK(reply == ema_says);
    CHECK(ema.received() == test::captured_upload()); // sent on unchanged
    CHECK(probe.wait_for_topic("ecu2mqtt/216000064136/state"));
}

TEST_CASE("EMA down, slow or closing early: the fake reply within the timeout") {
    SECTION("down") {
        Proxy proxy("127.0.0.1:" + std::to_string(test::free_port()));
        const auto [reply, waited] = timed_upload(proxy.service->port());
        CHECK(reply == kFakeReply);
        CHECK(waited < 1500ms);
        CHECK(proxy.service->process().wait_for_output("event=ema_no_reply", 2s));
    }
    SECTION("slow") {
        FakeEma ema(FakeEma::Mode::Slow, "");
        Proxy proxy("127.0.0.1:" + std::to_string(ema.port()));
        const auto [reply, waited] = timed_upload(proxy.service->port());
        CHECK(reply == kFakeReply);
        CHECK(waited >= 900ms); // it did wait for EMA ...
        CHECK(waited < 1800ms); // ... but not past the 1 s timeout
        CHECK_THAT(proxy.service->log(), Catch::Contains("timed out"));
    }
    SECTION("closes without answering") {
        FakeEma ema(FakeEma::Mode::CloseEarly, "");
        Proxy proxy("127.0.0.1:" + std::to_string(ema.port()));
        const auto [reply, waited] = timed_upload(proxy.service->port());
        CHECK(reply == kFakeReply);
        CHECK(waited < 900ms);
        CHECK(proxy.service->process().wait_for_output("closed without a reply", 2s));
    }
}

TEST_CASE("an unusual EMA reply is logged, relayed, and replaced with --block-firmware") {
    const std::string unusual = "FIRMWARE ecu_r_1.3.0 http://example.invalid/fw.bin";
    FakeEma ema(FakeEma::Mode::Answer, unusual);
    {
        Proxy proxy("127.0.0.1:" + std::to_string(ema.port()));
        test::TcpClient ecu(proxy.service->port());
        ecu.send(test::captured_upload());
        CHECK(ecu.receive(unusual.size()) == unusual);
        CHECK(proxy.service->process().wait_for_output("event=unusual_ema_reply", 2s));
    }
    Proxy blocking("127.0.0.1:" + std::to_string(ema.port()), {"--block-firmware"});
    CHECK(test::upload(blocking.service->port(), test::captured_upload()) == kFakeReply);
    CHECK(blocking.service->process().wait_for_output("blocked, sent the fake reply", 2s));
}

TEST_CASE("EMA's name is resolved through the configured resolver, not the local DNS") {
    const std::string ema_says = "10120240206112000";
    FakeEma ema(FakeEma::Mode::Answer, ema_says);
    FakeDns dns;
    Proxy proxy("ecu.apsystemsema.com:" + std::to_string(ema.port()),
                {"--ema-resolver", "127.0.0.1:" + std::to_string(dns.port())});
    CHECK(test::upload(proxy.service->port(), test::captured_upload()) == ema_says);
    CHECK(dns.queries() >= 1);
}

TEST_CASE("the DNS codec builds a query and reads only well-formed answers") {
    const auto query = ecu2mqtt::dns_a_query(0x1234, "ecu.apsystemsema.com");
    CHECK(query.size() == 12 + 22 + 4);
    CHECK(query[12] == 3); // "ecu"
    std::vector<std::uint8_t> answer = query;
    answer[2] = 0x81;
    answer[3] = 0x80;
    answer[7] = 1;
    const std::uint8_t record[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 3, 120, 7, 9};
    answer.insert(answer.end(), std::begin(record), std::end(record));
    const auto found = ecu2mqtt::dns_a_answers(0x1234, answer);
    REQUIRE(found.size() == 1);
    CHECK(found[0] == std::array<std::uint8_t, 4>{3, 120, 7, 9});
    CHECK(ecu2mqtt::dns_a_answers(0x9999, answer).empty()); // another query's answer
    for (std::size_t cut = 0; cut < answer.size(); ++cut)   // truncated: never read past the end
        CHECK(ecu2mqtt::dns_a_answers(0x1234,
                                      {answer.begin(), answer.begin() + static_cast<long>(cut)})
                  .size() <= 1);
    CHECK_THROWS(ecu2mqtt::dns_a_query(1, "bad..name"));
}

TEST_CASE("a reading that could not be kept gets our re-send reply, not EMA's acknowledgement") {
    const std::string ema_says = "10120240206112000";
    FakeEma ema(FakeEma::Mode::Answer, ema_says);
    Proxy proxy("127.0.0.1:" + std::to_string(ema.port()));
    auto spec = test::captured_upload_spec();
    spec.timestamp = "20240206111714";
    REQUIRE(test::upload(proxy.service->port(), test::build_upload(spec)) == ema_says);
    // Another process holds the database's write lock past the service's patience.
    test::DatabaseWriteLock lock(ecu2mqtt::Store::file_in(proxy.dir / "state"));
    const auto reply = test::slow_upload(proxy.service->port(), test::captured_upload());
    CHECK(reply == "10120240206111714"); // the last kept reading: send what follows again
    CHECK(ema.received().find("20240206112214") != std::string::npos); // EMA still got it
    CHECK(proxy.service->process().wait_for_output("event=ema_reply_replaced", 2s));
    CHECK_THAT(proxy.service->log(), Catch::Contains("sent=10120240206111714"));
}

TEST_CASE("EMA's name resolving to this service after the start is not forwarded to: no loop") {
    // The resolver passes the start-up check (it is not the local DNS), then answers with our
    // own address, as a DNS rewrite made after the start would: forwarding on the ECU's port
    // would send every message back to us, and each copy again, without end.
    FakeDns dns;
    Proxy proxy("ecu.apsystemsema.com",
                {"--ema-resolver", "127.0.0.1:" + std::to_string(dns.port())});
    CHECK(test::upload(proxy.service->port(), test::captured_upload()) == kFakeReply);
    CHECK(proxy.service->process().wait_for_output("event=ema_no_reply", 2s));
    std::this_thread::sleep_for(1s); // a loop would have made thousands of uploads by now
    const auto log = proxy.service->log();
    CHECK_THAT(log,
               Catch::Contains("reason=\"loop: ecu.apsystemsema.com now resolves to 127.0.0.1"));
    std::size_t uploads = 0;
    for (auto at = log.find("event=upload "); at != std::string::npos;
         at = log.find("event=upload ", at + 1))
        ++uploads;
    CHECK(uploads == 1);
}

} // namespace test_forwarding
