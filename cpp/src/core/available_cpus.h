// How many CPUs this process may compute on: the CPUs in its affinity mask (taskset,
// cpuset cgroups, docker --cpuset-cpus), capped by its cgroup's CPU quota (docker --cpus,
// Kubernetes CPU limits), which the affinity mask does not show. A container limited to
// 2 CPUs on a 64-core host sees 64 CPUs in its mask; 64 threads there burn the quota in a
// few milliseconds and wait out the rest of each 100 ms period.
#pragma once

#include <string>

namespace nle {

// The CPUs in this process's affinity mask, capped by its cgroup CPU quota; at least 1.
// Read once, on first use.
int available_cpus();

// The CPU quota of the cgroup a process is in, rounded up to whole CPUs, or 0 when it has
// none. `proc_self_cgroup` is the text of /proc/<pid>/cgroup; `cgroup_root` the mount
// point of the cgroup file systems (/sys/fs/cgroup). Version 2 (a "0::/path" line): the
// least of cpu.max over the cgroup and its ancestors. Version 1 (a line naming the "cpu"
// controller): cpu.cfs_quota_us / cpu.cfs_period_us of the cgroup, looked for under the
// cpu and cpu,cpuacct mounts. Files that are missing or unreadable count as no quota.
int cgroup_cpu_quota(const std::string& proc_self_cgroup, const std::string& cgroup_root);

}  // namespace nle
