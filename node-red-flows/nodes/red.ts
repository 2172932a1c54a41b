/**
 * The part of Node-RED's node API these nodes use (https://nodered.org/docs/creating-nodes/),
 * typed here: Node-RED ships no types, and @types/node-red would pull its express and editor
 * types into a package that needs none of them.
 */

/** A message as it travels between nodes: any properties, by convention `payload` and `topic`. */
export type NodeMessage = { [key: string]: unknown; topic?: string; payload?: unknown };

export interface NodeStatus {
  readonly fill: 'red' | 'green' | 'yellow' | 'blue' | 'grey';
  readonly shape: 'ring' | 'dot';
  readonly text: string;
}

export type Send = (msg: NodeMessage) => void;
/** Ends the handling of an input message; with an error, Catch nodes get it with the message. */
export type Done = (error?: Error) => void;

export interface Node {
  readonly id: string;
  readonly type: string;
  readonly name?: string;
  /** A config node's `credentials` (stored apart from the flow, never exported). */
  readonly credentials?: Readonly<Record<string, string | undefined>>;
  on(event: 'input', listener: (msg: NodeMessage, send: Send, done: Done) => void): void;
  on(event: 'close', listener: (removed: boolean, done: () => void) => void): void;
  send(msg: NodeMessage): void;
  status(status: NodeStatus): void;
  /** With a message, Catch nodes in the flow receive it; without one it is only logged. */
  error(error: Error | string, msg?: NodeMessage): void;
}

/**
 * The node's properties from the edit dialog, as the editor saved them: strings, numbers and
 * booleans that nothing has checked. Each node parses its own with a zod schema (config.ts).
 */
export type NodeDef = Readonly<Record<string, unknown>> & {
  readonly id: string;
  readonly type: string;
};

export interface AdminResponse {
  json(body: unknown): void;
}
type AdminHandler = (request: unknown, response: AdminResponse, next: () => void) => void;

export interface NodeAPI {
  readonly nodes: {
    createNode(node: Node, def: NodeDef): void;
    registerType(
      type: string,
      create: (this: Node, def: NodeDef) => void,
      options?: { credentials: Readonly<Record<string, { type: 'text' | 'password' }>> },
    ): void;
    getNode(id: string): unknown;
  };
  /** The editor's express app: endpoints the edit dialogs call. */
  readonly httpAdmin: { get(path: string, ...handlers: AdminHandler[]): void };
  readonly auth: { needsPermission(permission: string): AdminHandler };
}

/** What a node file exports: Node-RED calls it once with its API when it loads the file. */
export type NodeModule = (RED: NodeAPI) => void;

/**
 * A node type's module: registers `type`, whose nodes Node-RED creates for each one in a flow
 * and `start` then sets up.
 */
export function defineNode(
  type: string,
  start: (RED: NodeAPI, node: Node, def: NodeDef) => void,
  credentials?: Readonly<Record<string, { type: 'text' | 'password' }>>,
): NodeModule {
  return (RED) =>
    RED.nodes.registerType(
      type,
      function (this: Node, def: NodeDef) {
        RED.nodes.createNode(this, def);
        start(RED, this, def);
      },
      credentials && { credentials },
    );
}
