/**
 * The slice of the Kubernetes CRI API (package runtime.v1, k8s.io/cri-api
 * pkg/apis/runtime/v1/api.proto) that the CRI source calls, with the field
 * numbers of the real api.proto. Only the fields bpfkit reads are declared;
 * protobuf skips the others on the wire.
 *
 * It is a protobufjs JSON descriptor rather than a .proto file so the package
 * needs no file next to its bundle at run time (read-only root file systems,
 * bundlers). As .proto text it reads:
 *
 *   service RuntimeService {
 *     rpc Version(VersionRequest) returns (VersionResponse);
 *     rpc PodSandboxStatus(PodSandboxStatusRequest) returns (PodSandboxStatusResponse);
 *     rpc ListContainers(ListContainersRequest) returns (ListContainersResponse);
 *     rpc ContainerStatus(ContainerStatusRequest) returns (ContainerStatusResponse);
 *   }
 *   message VersionRequest { string version = 1; }
 *   message VersionResponse { string version = 1; string runtime_name = 2; string runtime_version = 3;
 *                             string runtime_api_version = 4; }
 *   message PodSandboxStatusRequest { string pod_sandbox_id = 1; bool verbose = 2; }
 *   message PodSandboxStatusResponse { PodSandboxStatus status = 1; }
 *   message PodSandboxStatus { string id = 1; PodSandboxMetadata metadata = 2; map<string,string> labels = 7;
 *                              map<string,string> annotations = 8; }
 *   message PodSandboxMetadata { string name = 1; string uid = 2; string namespace = 3; uint32 attempt = 4; }
 *   message ContainerFilter { string id = 1; string pod_sandbox_id = 3; }
 *   message ListContainersRequest { ContainerFilter filter = 1; }
 *   message ListContainersResponse { repeated Container containers = 1; }
 *   message Container { string id = 1; string pod_sandbox_id = 2; ContainerMetadata metadata = 3; ImageSpec image = 4;
 *                       string image_ref = 5; map<string,string> labels = 8; }
 *   message ContainerStatusRequest { string container_id = 1; bool verbose = 2; }
 *   message ContainerStatusResponse { ContainerStatus status = 1; }
 *   message ContainerStatus { string id = 1; ContainerMetadata metadata = 2; ImageSpec image = 8; string image_ref = 9;
 *                             map<string,string> labels = 12; }
 *   message ContainerMetadata { string name = 1; uint32 attempt = 2; }
 *   message ImageSpec { string image = 1; }
 */
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'

type Descriptor = Parameters<typeof protoLoader.fromJSON>[0]

const str = (id: number) => ({ type: 'string', id })
const map = (id: number) => ({ keyType: 'string', type: 'string', id })
const rpc = (requestType: string, responseType: string) => ({ requestType, responseType, comment: '' })

export const CRI_RUNTIME_V1_DESCRIPTOR: Descriptor = {
  nested: {
    runtime: {
      nested: {
        v1: {
          nested: {
            RuntimeService: {
              methods: {
                Version: rpc('VersionRequest', 'VersionResponse'),
                PodSandboxStatus: rpc('PodSandboxStatusRequest', 'PodSandboxStatusResponse'),
                ListContainers: rpc('ListContainersRequest', 'ListContainersResponse'),
                ContainerStatus: rpc('ContainerStatusRequest', 'ContainerStatusResponse'),
              },
            },
            VersionRequest: { fields: { version: str(1) } },
            VersionResponse: {
              fields: { version: str(1), runtime_name: str(2), runtime_version: str(3), runtime_api_version: str(4) },
            },
            PodSandboxStatusRequest: { fields: { pod_sandbox_id: str(1), verbose: { type: 'bool', id: 2 } } },
            PodSandboxStatusResponse: { fields: { status: { type: 'PodSandboxStatus', id: 1 } } },
            PodSandboxStatus: {
              fields: { id: str(1), metadata: { type: 'PodSandboxMetadata', id: 2 }, labels: map(7), annotations: map(8) },
            },
            PodSandboxMetadata: {
              fields: { name: str(1), uid: str(2), namespace: str(3), attempt: { type: 'uint32', id: 4 } },
            },
            ContainerFilter: { fields: { id: str(1), pod_sandbox_id: str(3) } },
            ListContainersRequest: { fields: { filter: { type: 'ContainerFilter', id: 1 } } },
            ListContainersResponse: { fields: { containers: { rule: 'repeated', type: 'Container', id: 1 } } },
            Container: {
              fields: {
                id: str(1),
                pod_sandbox_id: str(2),
                metadata: { type: 'ContainerMetadata', id: 3 },
                image: { type: 'ImageSpec', id: 4 },
                image_ref: str(5),
                labels: map(8),
              },
            },
            ContainerStatusRequest: { fields: { container_id: str(1), verbose: { type: 'bool', id: 2 } } },
            ContainerStatusResponse: { fields: { status: { type: 'ContainerStatus', id: 1 } } },
            ContainerStatus: {
              fields: {
                id: str(1),
                metadata: { type: 'ContainerMetadata', id: 2 },
                image: { type: 'ImageSpec', id: 8 },
                image_ref: str(9),
                labels: map(12),
              },
            },
            ContainerMetadata: { fields: { name: str(1), attempt: { type: 'uint32', id: 2 } } },
            ImageSpec: { fields: { image: str(1) } },
          },
        },
      },
    },
  },
}

/** Response shapes as proto-loader decodes them (keepCase, defaults filled in). */
export interface CriMetadata {
  name: string
  attempt?: number
}
export interface CriPodSandboxMetadata extends CriMetadata {
  uid: string
  namespace: string
}
export interface CriImageSpec {
  image: string
}
export interface CriVersionResponse {
  version: string
  runtime_name: string
  runtime_version: string
  runtime_api_version: string
}
export interface CriPodSandboxStatus {
  id: string
  metadata: CriPodSandboxMetadata | null
  labels: Record<string, string>
  annotations: Record<string, string>
}
export interface CriContainer {
  id: string
  pod_sandbox_id: string
  metadata: CriMetadata | null
  image: CriImageSpec | null
  image_ref: string
  labels: Record<string, string>
}
export interface CriContainerStatus {
  id: string
  metadata: CriMetadata | null
  image: CriImageSpec | null
  image_ref: string
  labels: Record<string, string>
}

const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true }

let cached: grpc.ServiceClientConstructor | undefined

/** The runtime.v1.RuntimeService client constructor (its `.service` serves test servers too). */
export function runtimeServiceClient(): grpc.ServiceClientConstructor {
  if (!cached) {
    const pkg = grpc.loadPackageDefinition(protoLoader.fromJSON(CRI_RUNTIME_V1_DESCRIPTOR, LOADER_OPTIONS))
    cached = ((pkg.runtime as grpc.GrpcObject).v1 as grpc.GrpcObject).RuntimeService as grpc.ServiceClientConstructor
  }
  return cached
}
