// A second, independent AWS client for `xtok server`: the AWS SDK for JavaScript v3 runs the
// STS, Secrets Manager and IAM operations the endpoint serves, and the errors it answers with
// (code and HTTP status). Run by tests/test_js_sdk.py with AWS_ENDPOINT_URL and an admin's keys
// in the environment; XTOK_CONFORMANCE_VALUE is a secret value that must round-trip.
// Prints one JSON line per check ({check, ok, detail}) and never prints a secret value.

import { IAM } from "@aws-sdk/client-iam";
import { SecretsManager } from "@aws-sdk/client-secrets-manager";
import { STS } from "@aws-sdk/client-sts";

const endpoint = process.env.AWS_ENDPOINT_URL;
const region = process.env.AWS_REGION || "us-east-1";
const value = process.env.XTOK_CONFORMANCE_VALUE || "";
const account = "123456789012";
const run = Math.random().toString(16).slice(2, 10);
const admin = {
  accessKeyId: process.env.AWS_ACCESS_KEY_ID,
  secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
};

function clients(credentials) {
  const config = { endpoint, region, credentials, maxAttempts: 1 };
  return { sts: new STS(config), sm: new SecretsManager(config), iam: new IAM(config) };
}

const results = [];

function report(check, ok, detail = "") {
  results.push(ok);
  console.log(JSON.stringify({ check, ok, detail }));
}

async function check(name, body) {
  try {
    const detail = await body();
    report(name, true, detail || "");
  } catch (err) {
    // The SDK's message may quote the server's; never a secret value (the server quotes none).
    report(name, false, `${err.name}: ${err.message}`.slice(0, 300));
  }
}

// The error code on the wire: the SDK names modeled errors by their shape (NoSuchEntity is
// NoSuchEntityException) and keeps the wire code of query-protocol errors in Error.Code.
function wireCode(err) {
  return err.Error?.Code ?? err.Code ?? err.name;
}

// The call must fail with `code` and HTTP `status`.
async function fails(name, call, code, status) {
  try {
    await call();
    report(name, false, `succeeded; expected ${code} ${status}`);
  } catch (err) {
    const got = `${wireCode(err)} ${err.$metadata?.httpStatusCode}`;
    report(name, got === `${code} ${status}`, `got ${got}, expected ${code} ${status}`);
  }
}

function expect(condition, what) {
  if (!condition) throw new Error(`expected ${what}`);
}

const policy = (...Statement) => JSON.stringify({ Version: "2012-10-17", Statement });
const allow = (Action, Resource = "*", extra = {}) => ({ Effect: "Allow", Action, Resource, ...extra });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const root = clients(admin);

// --- STS ---------------------------------------------------------------------------------------
await check("sts:GetCallerIdentity", async () => {
  const me = await root.sts.getCallerIdentity({});
  expect(me.Account === account && me.Arn === `arn:aws:iam::${account}:user/admin`, "the admin");
});

let session;
await check("sts:GetSessionToken", async () => {
  const out = await root.sts.getSessionToken({ DurationSeconds: 900 });
  session = out.Credentials;
  expect(session.AccessKeyId.startsWith("ASIA") && session.Expiration instanceof Date, "credentials");
  const viaSession = clients({
    accessKeyId: session.AccessKeyId,
    secretAccessKey: session.SecretAccessKey,
    sessionToken: session.SessionToken,
  });
  const me = await viaSession.sts.getCallerIdentity({});
  expect(me.Arn.endsWith(":user/admin"), "the session's caller is the admin");
});

const unknown = clients({ accessKeyId: "AKIA" + "X".repeat(16), secretAccessKey: "x".repeat(40) });
const wrong = clients({ accessKeyId: admin.accessKeyId, secretAccessKey: "y".repeat(40) });
await fails("sts unknown key", () => unknown.sts.getCallerIdentity({}), "InvalidClientTokenId", 403);
await fails("sts bad signature", () => wrong.sts.getCallerIdentity({}), "SignatureDoesNotMatch", 403);

let expired;
await check("sts:GetSessionToken (1 s, dev mode)", async () => {
  const out = await root.sts.getSessionToken({ DurationSeconds: 1 });
  expired = clients({
    accessKeyId: out.Credentials.AccessKeyId,
    secretAccessKey: out.Credentials.SecretAccessKey,
    sessionToken: out.Credentials.SessionToken,
  });
  await sleep(2100);
});
await fails("sts expired token", () => expired.sts.getCallerIdentity({}), "ExpiredToken", 403);
await fails("iam expired token", () => expired.iam.listUsers({}), "ExpiredToken", 403);
await fails("secretsmanager expired token", () => expired.sm.listSecrets({}), "ExpiredTokenException", 400);
await fails("secretsmanager unknown key", () => unknown.sm.listSecrets({}), "UnrecognizedClientException", 400);
await fails("secretsmanager bad signature", () => wrong.sm.listSecrets({}), "InvalidSignatureException", 400);

// MFA first: the test computed the codes for the current 30-second step.
const mfa = {
  user: process.env.XTOK_MFA_USER,
  serial: process.env.XTOK_MFA_SERIAL,
  codes: (process.env.XTOK_MFA_CODES || "").split(","),
};
const mfaUser = clients({
  accessKeyId: process.env.XTOK_MFA_KEY_ID,
  secretAccessKey: process.env.XTOK_MFA_SECRET_KEY,
});
await check("iam:EnableMFADevice/ListMFADevices", async () => {
  await root.iam.enableMFADevice({
    UserName: mfa.user,
    SerialNumber: mfa.serial,
    AuthenticationCode1: mfa.codes[0],
    AuthenticationCode2: mfa.codes[1],
  });
  const listed = await root.iam.listMFADevices({ UserName: mfa.user });
  expect(listed.MFADevices.length === 1 && listed.MFADevices[0].SerialNumber === mfa.serial, "the device");
});
await check("sts:GetSessionToken with MFA", async () => {
  const out = await mfaUser.sts.getSessionToken({ SerialNumber: mfa.serial, TokenCode: mfa.codes[2], DurationSeconds: 900 });
  expect(out.Credentials.AccessKeyId.startsWith("ASIA"), "credentials");
});
await fails(
  "sts MFA code used twice",
  () => mfaUser.sts.getSessionToken({ SerialNumber: mfa.serial, TokenCode: mfa.codes[2], DurationSeconds: 900 }),
  "AccessDenied",
  403,
);
await fails(
  "iam enable an enabled device",
  () =>
    root.iam.enableMFADevice({
      UserName: mfa.user,
      SerialNumber: mfa.serial,
      AuthenticationCode1: "000000",
      AuthenticationCode2: "000001",
    }),
  "EntityAlreadyExists",
  409,
);
await check("iam:DeactivateMFADevice", async () => {
  await root.iam.deactivateMFADevice({ UserName: mfa.user, SerialNumber: mfa.serial });
  expect((await root.iam.listMFADevices({ UserName: mfa.user })).MFADevices.length === 0, "none left");
});

// --- Secrets Manager -------------------------------------------------------------------------
const name = `js-${run}/credential`;
let v1, v2, v3;
await check("secretsmanager:CreateSecret", async () => {
  const out = await root.sm.createSecret({
    Name: name,
    SecretString: value,
    Description: "js",
    Tags: [{ Key: "team", Value: "ci" }],
  });
  expect(/-[A-Za-z0-9]{6}$/.test(out.ARN), "an ARN with a 6-character suffix");
  v1 = out.VersionId;
});
await fails("secretsmanager exists", () => root.sm.createSecret({ Name: name, SecretString: "x" }), "ResourceExistsException", 400);
await check("secretsmanager:GetSecretValue", async () => {
  const out = await root.sm.getSecretValue({ SecretId: name });
  expect(out.SecretString === value, "the stored value");
  expect(out.VersionStages.join() === "AWSCURRENT" && out.CreatedDate instanceof Date, "metadata");
});
await check("secretsmanager:PutSecretValue (AWSCURRENT moves)", async () => {
  v2 = (await root.sm.putSecretValue({ SecretId: name, SecretString: "second" })).VersionId;
  const out = await root.sm.getSecretValue({ SecretId: name, VersionStage: "AWSPREVIOUS" });
  expect(out.VersionId === v1, "the first version is AWSPREVIOUS");
});
await check("secretsmanager:PutSecretValue (VersionStages without AWSCURRENT)", async () => {
  v3 = (
    await root.sm.putSecretValue({ SecretId: name, SecretString: "third", VersionStages: ["AWSPENDING"] })
  ).VersionId;
  const stages = (await root.sm.describeSecret({ SecretId: name })).VersionIdsToStages;
  expect(stages[v1].join() === "AWSPREVIOUS" && stages[v2].join() === "AWSCURRENT", "untouched labels");
  expect(stages[v3].join() === "AWSPENDING", "the new label");
});
await fails(
  "secretsmanager label held elsewhere",
  () => root.sm.updateSecretVersionStage({ SecretId: name, VersionStage: "AWSCURRENT", MoveToVersionId: v3 }),
  "InvalidParameterException",
  400,
);
await check("secretsmanager:UpdateSecretVersionStage", async () => {
  await root.sm.updateSecretVersionStage({
    SecretId: name,
    VersionStage: "AWSCURRENT",
    MoveToVersionId: v3,
    RemoveFromVersionId: v2,
  });
  const out = await root.sm.getSecretValue({ SecretId: name });
  expect(out.VersionId === v3, "the pending version is current");
});
await check("secretsmanager:ListSecretVersionIds", async () => {
  const out = await root.sm.listSecretVersionIds({ SecretId: name });
  const ids = out.Versions.map((v) => v.VersionId).sort();
  expect(ids.join() === [v2, v3].sort().join(), "the labelled versions only");
  const all = await root.sm.listSecretVersionIds({ SecretId: name, IncludeDeprecated: true });
  expect(all.Versions.length === 3, "every version with IncludeDeprecated");
});
await check("secretsmanager:ListSecrets (SecretVersionsToStages)", async () => {
  const out = await root.sm.listSecrets({ Filters: [{ Key: "name", Values: [name] }] });
  expect(out.SecretList.length === 1, "one secret");
  expect(out.SecretList[0].SecretVersionsToStages[v3].includes("AWSCURRENT"), "its stages");
  expect(out.SecretList[0].Tags[0].Key === "team", "its tags");
});
await check("secretsmanager:DescribeSecret", async () => {
  const out = await root.sm.describeSecret({ SecretId: name });
  expect(out.Name === name && out.Description === "js" && out.LastChangedDate instanceof Date, "metadata");
});
await check("secretsmanager:UpdateSecret", async () => {
  await root.sm.updateSecret({ SecretId: name, Description: "updated" });
  expect((await root.sm.describeSecret({ SecretId: name })).Description === "updated", "the new description");
});
await check("secretsmanager:TagResource/UntagResource", async () => {
  await root.sm.tagResource({ SecretId: name, Tags: [{ Key: "env", Value: "prod" }] });
  await root.sm.untagResource({ SecretId: name, TagKeys: ["team"] });
  const tags = (await root.sm.describeSecret({ SecretId: name })).Tags;
  expect(tags.length === 1 && tags[0].Key === "env", "one tag left");
});
const binary = `js-${run}/binary`;
await check("secretsmanager SecretBinary round trip", async () => {
  const bytes = Uint8Array.from([0, 1, 2, 253, 254, 255]);
  await root.sm.createSecret({ Name: binary, SecretBinary: bytes });
  const out = await root.sm.getSecretValue({ SecretId: binary });
  expect(Buffer.from(out.SecretBinary).equals(Buffer.from(bytes)), "the same bytes");
});
await check("secretsmanager:BatchGetSecretValue", async () => {
  const out = await root.sm.batchGetSecretValue({ SecretIdList: [name, binary, `js-${run}/missing`] });
  expect(out.SecretValues.length === 2, "two values");
  expect(out.Errors.length === 1 && out.Errors[0].ErrorCode === "ResourceNotFoundException", "one error");
});
await check("secretsmanager:GetRandomPassword", async () => {
  const out = await root.sm.getRandomPassword({ PasswordLength: 40, ExcludePunctuation: true });
  expect(/^[A-Za-z0-9]{40}$/.test(out.RandomPassword), "40 letters and digits");
});
await fails("secretsmanager not found", () => root.sm.getSecretValue({ SecretId: `js-${run}/missing` }), "ResourceNotFoundException", 400);
await fails(
  "secretsmanager invalid parameter",
  () => root.sm.deleteSecret({ SecretId: name, RecoveryWindowInDays: 3 }),
  "InvalidParameterException",
  400,
);
await check("secretsmanager:DeleteSecret/RestoreSecret", async () => {
  const out = await root.sm.deleteSecret({ SecretId: name, RecoveryWindowInDays: 7 });
  expect(out.DeletionDate instanceof Date, "a deletion date");
  await root.sm.restoreSecret({ SecretId: name });
});
await check("secretsmanager:DeleteSecret (scheduled)", async () => {
  await root.sm.deleteSecret({ SecretId: binary, RecoveryWindowInDays: 7 });
});
await fails("secretsmanager marked for deletion", () => root.sm.getSecretValue({ SecretId: binary }), "InvalidRequestException", 400);

// --- IAM -------------------------------------------------------------------------------------
const user = `js-${run}`;
let userKeys;
await check("iam:CreateUser/GetUser/ListUsers", async () => {
  const out = await root.iam.createUser({ UserName: user, Path: "/ci/", Tags: [{ Key: "team", Value: "web" }] });
  expect(out.User.Arn === `arn:aws:iam::${account}:user/ci/${user}`, "a path ARN");
  const got = await root.iam.getUser({ UserName: user });
  expect(got.User.UserId.startsWith("AIDA") && got.User.Tags[0].Value === "web", "id and tags");
  const listed = await root.iam.listUsers({});
  expect(listed.Users.some((u) => u.UserName === user), "listed");
});
await fails("iam exists", () => root.iam.createUser({ UserName: user }), "EntityAlreadyExists", 409);
await fails("iam no such entity", () => root.iam.getUser({ UserName: `${user}-x` }), "NoSuchEntity", 404);
await check("iam:CreateAccessKey/ListAccessKeys", async () => {
  const key = (await root.iam.createAccessKey({ UserName: user })).AccessKey;
  userKeys = { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };
  const listed = await root.iam.listAccessKeys({ UserName: user });
  expect(listed.AccessKeyMetadata.length === 1, "one key");
});
const theirs = () => clients(userKeys);
await fails("iam access denied", () => theirs().iam.listUsers({}), "AccessDenied", 403);
await fails("secretsmanager access denied", () => theirs().sm.getSecretValue({ SecretId: name }), "AccessDeniedException", 400);
await check("iam:TagUser/ListUserTags/UntagUser", async () => {
  await root.iam.tagUser({ UserName: user, Tags: [{ Key: "team", Value: "ci" }] });
  const tags = (await root.iam.listUserTags({ UserName: user })).Tags;
  expect(tags.length === 1 && tags[0].Value === "ci", "the new value");
  await root.iam.untagUser({ UserName: user, TagKeys: ["none"] });
});
await check("iam inline user policy (Put/Get/List/Delete) and aws:PrincipalTag", async () => {
  const byTag = policy(
    allow("secretsmanager:GetSecretValue", "*", { Condition: { StringEquals: { "aws:PrincipalTag/team": "ci" } } }),
  );
  await root.iam.putUserPolicy({ UserName: user, PolicyName: "by-tag", PolicyDocument: byTag });
  const got = await root.iam.getUserPolicy({ UserName: user, PolicyName: "by-tag" });
  expect(JSON.parse(decodeURIComponent(got.PolicyDocument)).Statement.length === 1, "the document");
  expect((await root.iam.listUserPolicies({ UserName: user })).PolicyNames.join() === "by-tag", "listed");
  const out = await theirs().sm.getSecretValue({ SecretId: name });
  expect(out.SecretString === "third", "readable through the tag");
  await root.iam.deleteUserPolicy({ UserName: user, PolicyName: "by-tag" });
});
await fails(
  "iam malformed policy",
  () => root.iam.putUserPolicy({ UserName: user, PolicyName: "bad", PolicyDocument: "{" }),
  "MalformedPolicyDocument",
  400,
);

let policyArn;
await check("iam managed policies (Create/Get/List, versions)", async () => {
  const created = await root.iam.createPolicy({
    PolicyName: `read-${run}`,
    Path: "/ci/",
    PolicyDocument: policy(allow("secretsmanager:GetSecretValue", `arn:aws:secretsmanager:*:*:secret:js-${run}/*`)),
  });
  policyArn = created.Policy.Arn;
  expect(policyArn === `arn:aws:iam::${account}:policy/ci/read-${run}`, "a path ARN");
  expect((await root.iam.getPolicy({ PolicyArn: policyArn })).Policy.DefaultVersionId === "v1", "v1");
  const listed = await root.iam.listPolicies({ Scope: "Local", PathPrefix: "/ci/" });
  expect((await root.iam.listPolicies({ Scope: "AWS" })).Policies.length === 0, "no AWS-managed policies");
  expect(listed.Policies.some((p) => p.Arn === policyArn), "listed");
  const v2 = await root.iam.createPolicyVersion({
    PolicyArn: policyArn,
    PolicyDocument: policy(allow("sts:GetCallerIdentity")),
  });
  expect(v2.PolicyVersion.VersionId === "v2" && !v2.PolicyVersion.IsDefaultVersion, "v2, not default");
  const versions = await root.iam.listPolicyVersions({ PolicyArn: policyArn });
  expect(versions.Versions.length === 2, "two versions");
  await root.iam.setDefaultPolicyVersion({ PolicyArn: policyArn, VersionId: "v2" });
  const got = await root.iam.getPolicyVersion({ PolicyArn: policyArn, VersionId: "v1" });
  expect(decodeURIComponent(got.PolicyVersion.Document).includes("GetSecretValue"), "v1's document");
  await root.iam.setDefaultPolicyVersion({ PolicyArn: policyArn, VersionId: "v1" });
  await root.iam.deletePolicyVersion({ PolicyArn: policyArn, VersionId: "v2" });
});
await fails(
  "iam delete default version",
  () => root.iam.deletePolicyVersion({ PolicyArn: policyArn, VersionId: "v1" }),
  "DeleteConflict",
  409,
);
await check("iam:AttachUserPolicy grants, DetachUserPolicy takes back", async () => {
  await root.iam.attachUserPolicy({ UserName: user, PolicyArn: policyArn });
  const attached = await root.iam.listAttachedUserPolicies({ UserName: user });
  expect(attached.AttachedPolicies[0].PolicyArn === policyArn, "listed");
  const entities = await root.iam.listEntitiesForPolicy({ PolicyArn: policyArn });
  expect(entities.PolicyUsers.length === 1 && entities.PolicyUsers[0].UserName === user, "the user");
  expect((await theirs().sm.getSecretValue({ SecretId: name })).SecretString === "third", "readable");
  await root.iam.detachUserPolicy({ UserName: user, PolicyArn: policyArn });
});
const group = `js-${run}`;
await check("iam groups (Create/Get/List, members, inline and attached policies)", async () => {
  await root.iam.createGroup({ GroupName: group });
  await root.iam.addUserToGroup({ GroupName: group, UserName: user });
  await root.iam.attachGroupPolicy({ GroupName: group, PolicyArn: policyArn });
  expect((await theirs().sm.getSecretValue({ SecretId: name })).SecretString === "third", "readable via the group");
  await root.iam.putGroupPolicy({
    GroupName: group,
    PolicyName: "deny",
    PolicyDocument: policy({ Effect: "Deny", Action: "secretsmanager:*", Resource: "*" }),
  });
  try {
    await theirs().sm.getSecretValue({ SecretId: name });
    throw new Error("expected the group's Deny to apply");
  } catch (err) {
    expect(err.name === "AccessDeniedException", "AccessDeniedException");
  }
  const got = await root.iam.getGroup({ GroupName: group });
  expect(got.Users.length === 1 && got.Group.Arn.endsWith(`:group/${group}`), "one member");
  expect((await root.iam.listGroupsForUser({ UserName: user })).Groups.length === 1, "the user's groups");
  expect((await root.iam.listGroups({})).Groups.some((g) => g.GroupName === group), "listed");
  expect((await root.iam.listGroupPolicies({ GroupName: group })).PolicyNames.join() === "deny", "inline");
  const policyDoc = await root.iam.getGroupPolicy({ GroupName: group, PolicyName: "deny" });
  expect(policyDoc.GroupName === group, "the group's policy");
  expect((await root.iam.listAttachedGroupPolicies({ GroupName: group })).AttachedPolicies.length === 1, "attached");
});
await fails("iam delete group in use", () => root.iam.deleteGroup({ GroupName: group }), "DeleteConflict", 409);
await fails("iam delete attached policy", () => root.iam.deletePolicy({ PolicyArn: policyArn }), "DeleteConflict", 409);
await check("iam group teardown", async () => {
  await root.iam.deleteGroupPolicy({ GroupName: group, PolicyName: "deny" });
  await root.iam.detachGroupPolicy({ GroupName: group, PolicyArn: policyArn });
  await root.iam.removeUserFromGroup({ GroupName: group, UserName: user });
  await root.iam.deleteGroup({ GroupName: group });
});

const role = `js-${run}`;
const roleArn = `arn:aws:iam::${account}:role/${role}`;
await check("iam roles (Create/Get/List/Update, trust, inline and attached policies, tags)", async () => {
  const trust = policy({
    Effect: "Allow",
    Principal: { AWS: `arn:aws:iam::${account}:user/admin` },
    Action: ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
    Condition: { StringEquals: { "sts:ExternalId": `ext-${run}` } },
  });
  const out = await root.iam.createRole({ RoleName: role, AssumeRolePolicyDocument: trust });
  expect(out.Role.Arn === roleArn && out.Role.RoleId.startsWith("AROA"), "the role");
  await root.iam.updateRole({ RoleName: role, MaxSessionDuration: 7200, Description: "js" });
  expect((await root.iam.getRole({ RoleName: role })).Role.MaxSessionDuration === 7200, "updated");
  await root.iam.updateAssumeRolePolicy({ RoleName: role, PolicyDocument: trust });
  expect((await root.iam.listRoles({})).Roles.some((r) => r.RoleName === role), "listed");
  await root.iam.putRolePolicy({
    RoleName: role,
    PolicyName: "all-secrets",
    PolicyDocument: policy(allow("secretsmanager:GetSecretValue")),
  });
  expect((await root.iam.listRolePolicies({ RoleName: role })).PolicyNames.join() === "all-secrets", "inline");
  await root.iam.getRolePolicy({ RoleName: role, PolicyName: "all-secrets" });
  await root.iam.attachRolePolicy({ RoleName: role, PolicyArn: policyArn });
  expect((await root.iam.listAttachedRolePolicies({ RoleName: role })).AttachedPolicies.length === 1, "attached");
  await root.iam.tagRole({ RoleName: role, Tags: [{ Key: "team", Value: "ci" }] });
  expect((await root.iam.listRoleTags({ RoleName: role })).Tags.length === 1, "tagged");
});
await fails("sts assume role without the external id", () => root.sts.assumeRole({ RoleArn: roleArn, RoleSessionName: "js" }), "AccessDenied", 403);
await check("sts:AssumeRole (ExternalId, PolicyArns, Policy, Tags, SourceIdentity)", async () => {
  const out = await root.sts.assumeRole({
    RoleArn: roleArn,
    RoleSessionName: "js",
    ExternalId: `ext-${run}`,
    PolicyArns: [{ arn: policyArn }],
    SourceIdentity: "alice",
    Tags: [{ Key: "build", Value: "42" }],
    DurationSeconds: 900,
  });
  expect(out.AssumedRoleUser.Arn === `arn:aws:sts::${account}:assumed-role/${role}/js`, "the session ARN");
  expect(out.SourceIdentity === "alice" && typeof out.PackedPolicySize === "number", "source identity");
  const scoped = clients({
    accessKeyId: out.Credentials.AccessKeyId,
    secretAccessKey: out.Credentials.SecretAccessKey,
    sessionToken: out.Credentials.SessionToken,
  });
  expect((await scoped.sm.getSecretValue({ SecretId: name })).SecretString === "third", "in scope");
  try {
    await scoped.sm.createSecret({ Name: `js-${run}/other`, SecretString: "x" });
    throw new Error("expected the session policy to refuse CreateSecret");
  } catch (err) {
    expect(err.name === "AccessDeniedException" && err.$metadata.httpStatusCode === 400, "AccessDeniedException 400");
  }
});
await fails(
  "sts packed policy too large",
  () =>
    root.sts.assumeRole({
      RoleArn: roleArn,
      RoleSessionName: "js",
      ExternalId: `ext-${run}`,
      Policy: policy(allow("secretsmanager:GetSecretValue", "x".repeat(2100))),
    }),
  "PackedPolicyTooLarge",
  400,
);
await fails("iam delete role with policies", () => root.iam.deleteRole({ RoleName: role }), "DeleteConflict", 409);
await check("iam role teardown", async () => {
  await root.iam.detachRolePolicy({ RoleName: role, PolicyArn: policyArn });
  await root.iam.deleteRolePolicy({ RoleName: role, PolicyName: "all-secrets" });
  await root.iam.untagRole({ RoleName: role, TagKeys: ["team"] });
  await root.iam.deleteRole({ RoleName: role });
  await root.iam.deletePolicy({ PolicyArn: policyArn });
});
await check("iam virtual MFA (Create, List)", async () => {
  const out = await root.iam.createVirtualMFADevice({ VirtualMFADeviceName: `js-${run}` });
  expect(out.VirtualMFADevice.SerialNumber === `arn:aws:iam::${account}:mfa/js-${run}`, "the serial");
  expect((await root.iam.listMFADevices({ UserName: user })).MFADevices.length === 0, "none enabled");
});
await fails(
  "iam invalid authentication code",
  () =>
    root.iam.enableMFADevice({
      UserName: user,
      SerialNumber: `arn:aws:iam::${account}:mfa/js-${run}`,
      AuthenticationCode1: "000000",
      AuthenticationCode2: "000001",
    }),
  "InvalidAuthenticationCode",
  403,
);
await fails("iam validation", () => root.iam.createUser({ UserName: "bad name!" }), "ValidationError", 400);
await check("iam user teardown", async () => {
  const keys = await root.iam.listAccessKeys({ UserName: user });
  for (const key of keys.AccessKeyMetadata) {
    await root.iam.deleteAccessKey({ UserName: user, AccessKeyId: key.AccessKeyId });
  }
  await root.iam.deleteUser({ UserName: user });
});

const failed = results.filter((ok) => !ok).length;
console.log(JSON.stringify({ summary: true, checks: results.length, failed }));
process.exit(failed ? 1 : 0);
