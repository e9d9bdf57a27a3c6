// Types of agentriage/mcp: guards for tools of an MCP TypeScript SDK server.
import type { Decision, Engine } from './index'

/** A tool result as the MCP SDK returns it. */
export interface ToolResult {
  content: Array<{ type: string; text?: string; [key: string]: unknown }>
  isError?: boolean
  [key: string]: unknown
}

/** What an approver is asked. */
export interface ApprovalQuestion<Args> {
  tool: string
  args: Args
  decision: Decision
  extra: any
}

/** Options of {@link guardTool}. */
export interface GuardToolOptions<Args> {
  /** The action name, or a function of the arguments. */
  action: string | ((args: Args, extra: any) => string)
  /** The tool's name in messages (default: the action name). */
  name?: string
  /** The resource, or a function of the arguments. */
  resource?: Record<string, unknown> | ((args: Args, extra: any) => Record<string, unknown> | undefined)
  /** The request context, or a function of the arguments. */
  context?: Record<string, unknown> | ((args: Args, extra: any) => Record<string, unknown> | undefined)
  /** The caller's principal (default: {@link principalFromAuthInfo}). */
  principal?: (extra: any) => Record<string, unknown> | undefined
  /** Answers an escalation: `true` runs the call. Without it an escalation is refused. */
  approve?: (question: ApprovalQuestion<Args>) => boolean | Promise<boolean>
  /** Sees every decision. */
  onDecision?: (entry: { tool: string; args: Args; decision: Decision }) => void
  /** The request time (default: now). */
  clock?: () => Date
}

/** Wraps an MCP tool handler: it runs only when the policies allow (see the module doc). */
export declare function guardTool<Args, Extra = any>(
  engine: Engine,
  options: GuardToolOptions<Args>,
  handler: (args: Args, extra: Extra) => ToolResult | Promise<ToolResult>,
): (args: Args, extra: Extra) => Promise<ToolResult>

/** An approver that asks the user through MCP elicitation. */
export declare function elicitApproval(server: unknown): (question: ApprovalQuestion<unknown>) => Promise<boolean>

/** The principal from the SDK's `extra.authInfo`, or undefined. */
export declare function principalFromAuthInfo(extra: any): Record<string, unknown> | undefined
