// A child process for tests: started with arguments and extra environment, output to a file,
// killed and reaped when the object goes away.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <optional>
#include <spawn.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace test {

class ChildProcess {
  public:
    ChildProcess(std::vector<std::string> argv, const std::string& output_file,
                 std::vector<std::string> extra_env = {})
        : output_file_(output_file) {
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, output_file.c_str(),
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        std::vector<char*> args;
        for (auto& a : argv)
            args.push_back(a.data());
        args.push_back(nullptr);
        std::vector<std::string> env_strings;
        for (char** e = environ; *e; ++e)
            env_strings.emplace_back(*e);
        for (auto& e : extra_env)
            env_strings.push_back(e);
        std::vector<char*> env;
        for (auto& e : env_strings)
            env.push_back(e.data());
        env.push_back(nullptr);
        const int rc = posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), env.data());
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0)
            throw std::runtime_error("cannot start " + argv[0]);
    }
    ~ChildProcess() {
        if (pid_ > 0 && !status_) {
            ::kill(pid_, SIGKILL);
            int st = 0;
            ::waitpid(pid_, &st, 0);
        }
    }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    void signal(int sig) const { ::kill(pid_, sig); }
    pid_t pid() const { return pid_; }

    // The exit code (or 128 + signal) if the process ended within `timeout`.
    std::optional<int> wait_for(std::chrono::milliseconds timeout) {
        const auto end = std::chrono::steady_clock::now() + timeout;
        while (!status_) {
            int st = 0;
            const pid_t r = ::waitpid(pid_, &st, WNOHANG);
            if (r == pid_) {
                status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                break;
            }
            if (std::chrono::steady_clock::now() >= end)
                return std::nullopt;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return status_;
    }

    bool running() { return !wait_for(std::chrono::milliseconds(0)); }

    std::string output() const {
        std::ifstream in(output_file_);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }

    // Polls the output until it contains `text`.
    bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout) const {
        const auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            if (output().find(text) != std::string::npos)
                return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return output().find(text) != std::string::npos;
    }

  private:
    pid_t pid_ = -1;
    std::optional<int> status_;
    std::string output_file_;
};

} // namespace test
