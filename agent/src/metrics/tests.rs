//! The text encoder: families, labels, escaping, cumulative buckets.

use super::*;

#[test]
fn histogram_buckets_are_cumulative_with_inf_sum_and_count() {
    let m = Metrics::default();
    m.task_running(0.07);
    m.task_running(0.3);
    m.task_running(120.0);
    let text = m.render(&[(TaskStatus::Running, 2)], &[]);
    for line in [
        "# TYPE berth_runtask_to_running_seconds histogram",
        "berth_runtask_to_running_seconds_bucket{le=\"0.05\"} 0",
        "berth_runtask_to_running_seconds_bucket{le=\"0.1\"} 1",
        "berth_runtask_to_running_seconds_bucket{le=\"0.5\"} 2",
        "berth_runtask_to_running_seconds_bucket{le=\"60\"} 2",
        "berth_runtask_to_running_seconds_bucket{le=\"+Inf\"} 3",
        "berth_runtask_to_running_seconds_count 3",
        "berth_tasks{status=\"RUNNING\"} 2",
        "berth_tasks{status=\"STOPPED\"} 0",
        "# TYPE berth_image_pull_bytes_total counter",
        "berth_image_pull_bytes_total 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
}

#[test]
fn pulls_and_attaches_are_counted() {
    let m = Metrics::default();
    m.pull_done(PullSource::Registry, Duration::from_millis(700), Some(1000));
    m.pull_done(PullSource::Local, Duration::from_millis(1), Some(0));
    m.pull_done(PullSource::Registry, Duration::from_millis(1), None);
    m.attach_done(Duration::from_millis(3), true);
    m.attach_done(Duration::from_millis(3), false);
    let text = m.render(&[], &[]);
    for line in [
        "berth_image_pull_seconds_count{source=\"registry\"} 1",
        "berth_image_pull_seconds_count{source=\"local\"} 1",
        "berth_image_pull_bytes_total 1000",
        "berth_image_pull_failures_total 1",
        "berth_eni_attach_seconds_bucket{le=\"0.005\"} 1",
        "berth_eni_attach_failures_total 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
}

#[test]
fn task_and_container_series_carry_their_labels_escaped() {
    let t = TaskSample {
        task: "abc".into(),
        cluster: "de\"v".into(),
        task_definition: "web:3".into(),
        usage: Usage {
            cpu_seconds: Some(1.5),
            memory_bytes: Some(4096),
            memory_limit_bytes: Some(536_870_912),
            pids: Some(3),
        },
        net_rx_bytes: Some(10),
        net_tx_bytes: Some(20),
        containers: vec![(
            "app".into(),
            Usage {
                memory_bytes: Some(1024),
                ..Usage::default()
            },
        )],
    };
    let text = Metrics::default().render(&[], &[t]);
    let l = "task=\"abc\",cluster=\"de\\\"v\",task_definition=\"web:3\"";
    for line in [
        "# TYPE berth_task_cpu_seconds_total counter".to_owned(),
        format!("berth_task_cpu_seconds_total{{{l}}} 1.5"),
        format!("berth_task_memory_usage_bytes{{{l}}} 4096"),
        format!("berth_task_memory_limit_bytes{{{l}}} 536870912"),
        format!("berth_task_pids{{{l}}} 3"),
        format!("berth_task_network_receive_bytes_total{{{l}}} 10"),
        format!("berth_task_network_transmit_bytes_total{{{l}}} 20"),
        format!("berth_container_memory_usage_bytes{{{l},container=\"app\"}} 1024"),
    ] {
        assert!(text.lines().any(|x| x == line), "no `{line}` in:\n{text}");
    }
    assert!(
        !text.contains("berth_container_cpu_seconds_total{"),
        "an unknown value is left out, not written as 0"
    );
}
