#!/usr/bin/env bash
# The AWS world lbctl's tests and demo run in, for LocalStack's ready.d (or any endpoint):
# a VPC, one subnet per zone tagged kubernetes.io/role/elb=1, kubernetes.io/role/internal-elb=1
# and kubernetes.io/cluster/<cluster>=owned, an internet gateway, a node security group and N
# running instances; then the `lbctl sandbox --nodes-file` for them (providerID
# aws:///<az>/<instance-id>), printed and written to $LBCTL_NODES_FILE.
# The same world as lbctl/emulators/aws/world.py (`lbctl emulator aws`, the tests): keep them in step.
#
#   LBCTL_CLUSTER (kubernetes)  LBCTL_NODES (3)  LBCTL_ZONES (2)
#   LBCTL_NODES_FILE (/tmp/lbctl-nodes.yaml)  AWS_DEFAULT_REGION (us-east-1)
#   AWS_ENDPOINT_URL: use `aws --endpoint-url` on it; unset: awslocal if present, else
#   `aws --endpoint-url http://localhost:4566`.
set -euo pipefail

cluster="${LBCTL_CLUSTER:-kubernetes}"
nodes="${LBCTL_NODES:-3}"
zones="${LBCTL_ZONES:-2}"
nodes_file="${LBCTL_NODES_FILE:-/tmp/lbctl-nodes.yaml}"
region="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="$region"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_PAGER=""

if [[ -n "${AWS_ENDPOINT_URL:-}" ]]; then
    cli=(aws --endpoint-url "$AWS_ENDPOINT_URL")
elif command -v awslocal >/dev/null 2>&1; then
    cli=(awslocal)
else
    cli=(aws --endpoint-url "http://localhost:4566")
fi

ec2() { "${cli[@]}" ec2 "$@" --output text; }
log() { echo "10-lbctl-world: $*" >&2; }

# tags RESOURCE-TYPE KEY=VALUE...: a --tag-specifications JSON document
tags() {
    local kind="$1" sep="" pair out
    shift
    out="[{\"ResourceType\":\"$kind\",\"Tags\":["
    for pair in "$@"; do
        out+="$sep{\"Key\":\"${pair%%=*}\",\"Value\":\"${pair#*=}\"}"
        sep=","
    done
    echo "$out]}]"
}

owned="kubernetes.io/cluster/$cluster=owned"

existing=$(ec2 describe-vpcs --filters "Name=tag:kubernetes.io/cluster/$cluster,Values=owned" \
    --query 'Vpcs[0].VpcId')
if [[ -n "$existing" && "$existing" != "None" ]]; then
    log "cluster $cluster already has VPC $existing: nothing to do"
    exit 0
fi

read -r -a azs <<<"$(ec2 describe-availability-zones \
    --filters "Name=region-name,Values=$region" --query 'sort(AvailabilityZones[].ZoneName)')"
if ((${#azs[@]} < zones)); then
    log "$region has ${#azs[@]} availability zones, $zones wanted"
    exit 1
fi
azs=("${azs[@]:0:zones}")

vpc=$(ec2 create-vpc --cidr-block 10.0.0.0/16 --query Vpc.VpcId \
    --tag-specifications "$(tags vpc "Name=$cluster-vpc" "$owned")")
ec2 modify-vpc-attribute --vpc-id "$vpc" --enable-dns-hostnames '{"Value":true}' >/dev/null
igw=$(ec2 create-internet-gateway --query InternetGateway.InternetGatewayId \
    --tag-specifications "$(tags internet-gateway "Name=$cluster-igw" "$owned")")
ec2 attach-internet-gateway --internet-gateway-id "$igw" --vpc-id "$vpc" >/dev/null
rtb=$(ec2 create-route-table --vpc-id "$vpc" --query RouteTable.RouteTableId \
    --tag-specifications "$(tags route-table "Name=$cluster-public" "$owned")")
ec2 create-route --route-table-id "$rtb" --destination-cidr-block 0.0.0.0/0 \
    --gateway-id "$igw" >/dev/null

declare -A subnet
for k in "${!azs[@]}"; do
    az="${azs[$k]}"
    subnet[$az]=$(ec2 create-subnet --vpc-id "$vpc" --cidr-block "10.0.$((16 * k)).0/20" \
        --availability-zone "$az" --query Subnet.SubnetId \
        --tag-specifications "$(tags subnet "Name=$cluster-$az" kubernetes.io/role/elb=1 \
            kubernetes.io/role/internal-elb=1 "$owned")")
    ec2 associate-route-table --route-table-id "$rtb" --subnet-id "${subnet[$az]}" >/dev/null
done

sg=$(ec2 create-security-group --group-name "$cluster-node" --vpc-id "$vpc" \
    --description "nodes of cluster $cluster" --query GroupId \
    --tag-specifications "$(tags security-group "Name=$cluster-node" "$owned")")
ec2 authorize-security-group-ingress --group-id "$sg" --ip-permissions \
    "[{\"IpProtocol\":\"-1\",\"UserIdGroupPairs\":[{\"GroupId\":\"$sg\",\"Description\":\"node to node\"}]}]" \
    >/dev/null

image=$(ec2 describe-images --owners amazon --query 'sort_by(Images,&ImageId)[0].ImageId' \
    --filters 'Name=name,Values=al2023-ami-*-x86_64,amzn2-ami-hvm-*-x86_64-gp2')
if [[ -z "$image" || "$image" == "None" ]]; then
    image=$(ec2 describe-images --query 'sort_by(Images,&ImageId)[0].ImageId')
fi

ids=()
for ((k = 0; k < nodes; k++)); do
    az="${azs[$((k % ${#azs[@]}))]}"
    ids+=("$(ec2 run-instances --image-id "$image" --instance-type t3.medium --count 1 \
        --subnet-id "${subnet[$az]}" --security-group-ids "$sg" \
        --query 'Instances[0].InstanceId' \
        --tag-specifications "$(tags instance "Name=$cluster-node-$((k + 1))" "$owned")")")
done
if ((${#ids[@]})); then
    "${cli[@]}" ec2 wait instance-running --instance-ids "${ids[@]}"
fi

if [[ "$region" == us-east-1 ]]; then suffix=ec2.internal; else suffix="$region.compute.internal"; fi
{
    echo "# lbctl sandbox --nodes-file: cluster $cluster, $region, VPC $vpc"
    echo "nodes:"
    for id in "${ids[@]}"; do
        read -r az ip <<<"$(ec2 describe-instances --instance-ids "$id" \
            --query 'Reservations[0].Instances[0].[Placement.AvailabilityZone,PrivateIpAddress]')"
        name="ip-${ip//./-}.$suffix"
        cat <<NODE
- name: $name
  providerID: aws:///$az/$id
  addresses:
  - type: InternalIP
    address: $ip
  - type: InternalDNS
    address: $name
  - type: Hostname
    address: $name
  labels:
    topology.kubernetes.io/zone: $az
    topology.kubernetes.io/region: $region
    node.kubernetes.io/instance-type: t3.medium
  simulate: false
NODE
    done
} >"$nodes_file.tmp"
mv "$nodes_file.tmp" "$nodes_file"
cat "$nodes_file"
log "cluster $cluster: VPC $vpc, subnets ${subnet[*]}, security group $sg, ${#ids[@]} instances; nodes file $nodes_file"
