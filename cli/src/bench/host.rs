//! What a `dbrt bench` record says about the machine and the build: CPU model, dbrt version,
//! peak resident memory.

/// dbrt's version, with the git commit it was built from when known (see build.rs).
pub const DBRT_VERSION: &str = env!("DBRT_VERSION");

/// The CPU model from /proc/cpuinfo's text: x86's `model name`, or on aarch64 (which has no
/// model name) the implementer and part of every core kind, e.g. "ARM Cortex-A55 + ARM
/// Cortex-A76"; "unknown" when it says neither.
pub fn cpu_name(cpuinfo: &str) -> String {
    let field = |line: &str, key: &str| -> Option<String> {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    };
    if let Some(name) = cpuinfo.lines().find_map(|l| field(l, "model name")) {
        return name;
    }
    let mut cores: Vec<String> = Vec::new();
    let mut implementer = None;
    for line in cpuinfo.lines() {
        if let Some(v) = field(line, "CPU implementer") {
            implementer = parse_hex(&v);
        } else if let (Some(part), Some(imp)) = (field(line, "CPU part"), implementer) {
            let name = arm_core_name(imp, parse_hex(&part).unwrap_or(u32::MAX));
            if !cores.contains(&name) {
                cores.push(name);
            }
        }
    }
    if cores.is_empty() {
        "unknown".into()
    } else {
        cores.join(" + ")
    }
}

/// This machine's CPU model (see [`cpu_name`]).
pub fn this_cpu() -> String {
    std::fs::read_to_string("/proc/cpuinfo").map_or_else(|_| "unknown".into(), |s| cpu_name(&s))
}

fn parse_hex(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

/// Implementer and part ids as the Arm ARM's MIDR_EL1 and Linux's cputype.h give them.
fn arm_core_name(implementer: u32, part: u32) -> String {
    let vendor = match implementer {
        0x41 => "ARM",
        0x42 => "Broadcom",
        0x46 => "Fujitsu",
        0x48 => "HiSilicon",
        0x4e => "NVIDIA",
        0x51 => "Qualcomm",
        0x53 => "Samsung",
        0x61 => "Apple",
        0xc0 => "Ampere",
        _ => return format!("implementer {implementer:#x} part {part:#x}"),
    };
    let core = match (implementer, part) {
        (0x41, 0xd03) => "Cortex-A53",
        (0x41, 0xd04) => "Cortex-A35",
        (0x41, 0xd05) => "Cortex-A55",
        (0x41, 0xd07) => "Cortex-A57",
        (0x41, 0xd08) => "Cortex-A72",
        (0x41, 0xd09) => "Cortex-A73",
        (0x41, 0xd0a) => "Cortex-A75",
        (0x41, 0xd0b) => "Cortex-A76",
        (0x41, 0xd0c) => "Neoverse-N1",
        (0x41, 0xd0d) => "Cortex-A77",
        (0x41, 0xd40) => "Neoverse-V1",
        (0x41, 0xd41) => "Cortex-A78",
        (0x41, 0xd44) => "Cortex-X1",
        (0x41, 0xd46) => "Cortex-A510",
        (0x41, 0xd47) => "Cortex-A710",
        (0x41, 0xd48) => "Cortex-X2",
        (0x41, 0xd49) => "Neoverse-N2",
        (0x41, 0xd4d) => "Cortex-A715",
        (0x41, 0xd4e) => "Cortex-X3",
        (0x41, 0xd4f) => "Neoverse-V2",
        (0x41, 0xd80) => "Cortex-A520",
        (0x41, 0xd81) => "Cortex-A720",
        (0x41, 0xd82) => "Cortex-X4",
        (0x46, 0x001) => "A64FX",
        (0x48, 0xd01) => "TaiShan-v110",
        (0xc0, 0xac3) => "Ampere-1",
        _ => return format!("{vendor} part {part:#x}"),
    };
    format!("{vendor} {core}")
}

/// Peak resident memory of this process (VmHWM) since it started or since the last
/// [`reset_peak_rss`], in MB; NaN where /proc does not say.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Starts the peak resident memory anew (Linux's clear_refs "5"), so that each configuration
/// reports its own peak and not a larger model's measured before it. Where that is refused the
/// peak stays the process's, which is logged.
pub fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        log::info!("peak RSS is the whole run's: /proc/self/clear_refs: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::cpu_name;

    #[test]
    fn cpu_names() {
        let x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) \
                   Processor\nflags\t\t: fpu\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) \
                   Processor\n";
        assert_eq!(cpu_name(x86), "Intel(R) Xeon(R) Processor");
        let n1 = "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU \
                  architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n";
        assert_eq!(cpu_name(n1), "ARM Neoverse-N1");
        let big_little = "CPU implementer\t: 0x41\nCPU part\t: 0xd05\n\nCPU implementer\t: \
                          0x41\nCPU part\t: 0xd05\n\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n";
        assert_eq!(cpu_name(big_little), "ARM Cortex-A55 + ARM Cortex-A76");
        let kunpeng = "CPU implementer\t: 0x48\nCPU part\t: 0xd01\n";
        assert_eq!(cpu_name(kunpeng), "HiSilicon TaiShan-v110");
        assert_eq!(
            cpu_name("CPU implementer\t: 0x41\nCPU part\t: 0xfff\n"),
            "ARM part 0xfff"
        );
        assert_eq!(
            cpu_name("CPU implementer\t: 0x99\nCPU part\t: 0x1\n"),
            "implementer 0x99 part 0x1"
        );
        assert_eq!(cpu_name(""), "unknown");
    }
}
