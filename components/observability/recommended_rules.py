"""The recommended Kubernetes rule groups of Azure Monitor managed Prometheus, as the add-on's templates
create
them: Node and Kubernetes recording rules (what the portal's and Grafana's Kubernetes dashboards read) and a
selection of the community alerts. Source: Azure/prometheus-collector, AddonBicepTemplate/
FullAzureMonitorMetricsProfile.bicep at 4729fae53601079fb0e3da84d3c6fc851c4f4a5e (recording rules) and
AddonBicepTemplate/recommendedMetricAlerts.bicep at 05f8b1258fbef091f96e40d1ba4c0c91d1e7f424 (alerts);
the rules
are the kubernetes-mixin's (github.com/kubernetes-monitoring/kubernetes-mixin, Apache-2.0).

The expressions are Prometheus rules like the SLO's (components/observability/slo.py), so the same
`promtool check rules` validates them (tests/components/test_slo_rules.py).
"""

from __future__ import annotations

from components.observability.slo import Rule, RuleGroup

_NODE = 'job="node"'
_KSM = 'job="kube-state-metrics"'
_POD_NODE = (
    'topk by (cluster, namespace, pod) (1, max by (cluster, namespace, pod, node) (kube_pod_info{node!=""}))'
)
_ACTIVE = 'max by (namespace, pod, cluster) ((kube_pod_status_phase{phase=~"Pending|Running"} == 1))'


def _node_rules() -> list[Rule]:
    def rate_excluding_lo(metric: str) -> str:
        return f'sum without (device) (rate({metric}{{{_NODE}, device!="lo"}}[5m]))'

    return [
        Rule(
            record="instance:node_num_cpu:sum",
            expression=f'count without (cpu, mode) (node_cpu_seconds_total{{{_NODE},mode="idle"}})',
        ),
        Rule(
            record="instance:node_cpu_utilisation:rate5m",
            expression=(
                f"1 - avg without (cpu) (sum without (mode) "
                f'(rate(node_cpu_seconds_total{{{_NODE}, mode=~"idle|iowait|steal"}}[5m])))'
            ),
        ),
        Rule(
            record="instance:node_load1_per_cpu:ratio",
            expression=f"(node_load1{{{_NODE}}} / instance:node_num_cpu:sum{{{_NODE}}})",
        ),
        Rule(
            record="instance:node_memory_utilisation:ratio",
            expression=(
                f"1 - ((node_memory_MemAvailable_bytes{{{_NODE}}} or (node_memory_Buffers_bytes{{{_NODE}}} + "
                f"node_memory_Cached_bytes{{{_NODE}}} + node_memory_MemFree_bytes{{{_NODE}}} + "
                f"node_memory_Slab_bytes{{{_NODE}}})) / node_memory_MemTotal_bytes{{{_NODE}}})"
            ),
        ),
        Rule(
            record="instance:node_vmstat_pgmajfault:rate5m",
            expression=f"rate(node_vmstat_pgmajfault{{{_NODE}}}[5m])",
        ),
        Rule(
            record="instance_device:node_disk_io_time_seconds:rate5m",
            expression=f'rate(node_disk_io_time_seconds_total{{{_NODE}, device!=""}}[5m])',
        ),
        Rule(
            record="instance_device:node_disk_io_time_weighted_seconds:rate5m",
            expression=f'rate(node_disk_io_time_weighted_seconds_total{{{_NODE}, device!=""}}[5m])',
        ),
        Rule(
            record="instance:node_network_receive_bytes_excluding_lo:rate5m",
            expression=rate_excluding_lo("node_network_receive_bytes_total"),
        ),
        Rule(
            record="instance:node_network_transmit_bytes_excluding_lo:rate5m",
            expression=rate_excluding_lo("node_network_transmit_bytes_total"),
        ),
        Rule(
            record="instance:node_network_receive_drop_excluding_lo:rate5m",
            expression=rate_excluding_lo("node_network_receive_drop_total"),
        ),
        Rule(
            record="instance:node_network_transmit_drop_excluding_lo:rate5m",
            expression=rate_excluding_lo("node_network_transmit_drop_total"),
        ),
    ]


def _kubernetes_rules() -> list[Rule]:
    def on_node(metric: str) -> str:
        return (
            f'{metric}{{job="cadvisor", image!=""}} * on (namespace, pod) group_left(node) '
            'topk by (namespace, pod) (1, max by (namespace, pod, node) (kube_pod_info{node!=""}))'
        )

    def active(resource: str, kind: str) -> Rule:
        return Rule(
            record=f"cluster:namespace:pod_{resource}:active:kube_pod_container_resource_{kind}",
            expression=(
                f'kube_pod_container_resource_{kind}{{resource="{resource}",{_KSM}}} * on (namespace, '
                f"pod, cluster) "
                f"group_left() {_ACTIVE}"
            ),
        )

    def namespace_sum(resource: str, kind: str) -> Rule:
        return Rule(
            record=f"namespace_{resource}:kube_pod_container_resource_{kind}:sum",
            expression=(
                "sum by (namespace, cluster) (sum by (namespace, pod, cluster) (max by (namespace, "
                "pod, container, "
                f'cluster) (kube_pod_container_resource_{kind}{{resource="{resource}",{_KSM}}}) * on '
                f"(namespace, pod, "
                f"cluster) group_left() max by (namespace, pod, cluster) "
                f'(kube_pod_status_phase{{phase=~"Pending|Running"}} == 1)))'
            ),
        )

    def owner(kind: str, workload_type: str) -> Rule:
        return Rule(
            record="namespace_workload_pod:kube_pod_owner:relabel",
            expression=(
                f"max by (cluster, namespace, workload, pod) (label_replace(kube_pod_owner{{{_KSM}, "
                f'owner_kind="{kind}"}}, '
                '"workload", "$1", "owner_name", "(.*)"))'
            ),
            labels={"workload_type": workload_type},
        )

    return [
        Rule(
            record="node_namespace_pod_container:container_cpu_usage_seconds_total:sum_irate",
            expression=(
                "sum by (cluster, namespace, pod, container) "
                '(irate(container_cpu_usage_seconds_total{job="cadvisor", '
                f'image!=""}}[5m])) * on (cluster, namespace, pod) group_left(node) {_POD_NODE}'
            ),
        ),
        *(
            Rule(record=f"node_namespace_pod_container:{metric}", expression=on_node(metric))
            for metric in (
                "container_memory_working_set_bytes",
                "container_memory_rss",
                "container_memory_cache",
                "container_memory_swap",
            )
        ),
        active("memory", "requests"),
        namespace_sum("memory", "requests"),
        active("cpu", "requests"),
        namespace_sum("cpu", "requests"),
        active("memory", "limits"),
        namespace_sum("memory", "limits"),
        active("cpu", "limits"),
        namespace_sum("cpu", "limits"),
        Rule(
            record="namespace_workload_pod:kube_pod_owner:relabel",
            expression=(
                "max by (cluster, namespace, workload, pod) (label_replace(label_replace(kube_pod_owner{"
                f'{_KSM}, owner_kind="ReplicaSet"}}, "replicaset", "$1", "owner_name", "(.*)") * on '
                f"(replicaset, "
                "namespace) group_left(owner_name) topk by (replicaset, namespace) (1, max by "
                "(replicaset, namespace, "
                f'owner_name) (kube_replicaset_owner{{{_KSM}}})), "workload", "$1", "owner_name", "(.*)"))'
            ),
            labels={"workload_type": "deployment"},
        ),
        owner("DaemonSet", "daemonset"),
        owner("StatefulSet", "statefulset"),
        owner("Job", "job"),
        Rule(
            record=":node_memory_MemAvailable_bytes:sum",
            expression=(
                f"sum(node_memory_MemAvailable_bytes{{{_NODE}}} or (node_memory_Buffers_bytes{{{_NODE}}} + "
                f"node_memory_Cached_bytes{{{_NODE}}} + node_memory_MemFree_bytes{{{_NODE}}} + "
                f"node_memory_Slab_bytes{{{_NODE}}})) by (cluster)"
            ),
        ),
        Rule(
            record="cluster:node_cpu:ratio_rate5m",
            expression=(
                f'sum(rate(node_cpu_seconds_total{{{_NODE},mode!="idle",mode!="iowait",mode!="steal"}}[5m])) '
                "by "
                f"(cluster) / count(sum(node_cpu_seconds_total{{{_NODE}}}) by (cluster, instance, "
                f"cpu)) by (cluster)"
            ),
        ),
    ]


def _community_alerts() -> list[Rule]:
    runbooks = "https://github.com/prometheus-operator/runbooks/blob/main/content/runbooks/kubernetes"
    return [
        Rule(
            alert="KubePodCrashLooping",
            expression=(
                "max_over_time(kube_pod_container_status_waiting_reason"
                f'{{reason="CrashLoopBackOff", {_KSM}}}[5m]) >= 1'
            ),
            for_minutes=15,
            severity="ticket",
            annotations={
                "summary": (
                    "{{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.container }}) is crash looping"
                ),
                "runbook": f"{runbooks}/KubePodCrashLooping.md",
            },
        ),
        Rule(
            alert="KubeDeploymentReplicasMismatch",
            expression=(
                f"(kube_deployment_spec_replicas{{{_KSM}}} > "
                f"kube_deployment_status_replicas_available{{{_KSM}}}) "
                f"and (changes(kube_deployment_status_replicas_updated{{{_KSM}}}[10m]) == 0)"
            ),
            for_minutes=15,
            severity="ticket",
            annotations={
                "summary": (
                    "Deployment {{ $labels.namespace }}/{{ $labels.deployment }} has fewer "
                    "available replicas than it wants"
                ),
                "runbook": f"{runbooks}/KubeDeploymentReplicasMismatch.md",
            },
        ),
        Rule(
            alert="KubeHpaMaxedOut",
            expression=(
                f"kube_horizontalpodautoscaler_status_current_replicas{{{_KSM}}} == "
                f"kube_horizontalpodautoscaler_spec_max_replicas{{{_KSM}}}"
            ),
            for_minutes=15,
            severity="ticket",
            annotations={
                "summary": (
                    "HPA {{ $labels.namespace }}/{{ $labels.horizontalpodautoscaler }} has run "
                    "at its maximum for 15 minutes"
                ),
                "runbook": f"{runbooks}/KubeHpaMaxedOut.md",
            },
        ),
        Rule(
            alert="KubeContainerMemoryNearLimit",
            expression=(
                "avg by (namespace, pod, container, cluster) "
                '(container_memory_working_set_bytes{container!="", image!="", '
                'container!="POD"} / on (namespace, cluster, pod, container) group_left '
                "kube_pod_container_resource_limits"
                '{resource="memory", node!=""}) > 0.95'
            ),
            for_minutes=10,
            severity="ticket",
            annotations={
                "summary": (
                    "{{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.container }}) uses "
                    "> 95 % of its memory limit"
                ),
                "runbook": "docs/runbook.md#when-an-alert-fires",
            },
        ),
    ]


def recommended_groups() -> tuple[RuleGroup, RuleGroup, RuleGroup]:
    """(Node recording rules, Kubernetes recording rules, community alerts)."""
    return (
        RuleGroup("NodeRecordingRulesRuleGroup", "Node Recording Rules RuleGroup", _node_rules()),
        RuleGroup(
            "KubernetesRecordingRulesRuleGroup", "Kubernetes Recording Rules RuleGroup", _kubernetes_rules()
        ),
        RuleGroup(
            "KubernetesAlertsRuleGroup",
            "Kubernetes community alerts (recommended selection)",
            _community_alerts(),
        ),
    )
