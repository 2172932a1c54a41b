/**
 * Just what the tests use of two untyped CommonJS packages: node-red-node-test-helper
 * (https://github.com/node-red/node-red-node-test-helper) and Node-RED's embedding API
 * (https://nodered.org/docs/user-guide/runtime/embedding).
 */
declare module 'node-red-node-test-helper' {
  import type { EventEmitter } from 'node:events';

  export interface TestNode extends EventEmitter {
    readonly id: string;
    readonly type: string;
    receive(msg: Record<string, unknown>): void;
  }
  export type FlowNode = Readonly<Record<string, unknown>> & { readonly id: string };

  const helper: {
    init(runtimePath: string, settings?: Record<string, unknown>): void;
    startServer(): Promise<void>;
    stopServer(): Promise<void>;
    load(
      modules: unknown,
      flow: readonly FlowNode[],
      credentials?: Readonly<Record<string, Record<string, string>>>,
    ): Promise<void>;
    unload(): Promise<void>;
    getNode(id: string): TestNode | null;
  };
  export default helper;
}

declare module 'node-red' {
  import type { EventEmitter } from 'node:events';
  import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';

  type App = (request: IncomingMessage, response: ServerResponse, next: () => void) => void;
  const RED: {
    init(server: Server, settings: Record<string, unknown>): void;
    start(): Promise<void>;
    stop(): Promise<void>;
    readonly httpAdmin: App & RequestListener;
    readonly httpNode: App & RequestListener;
    readonly events: EventEmitter;
  };
  export default RED;
}
