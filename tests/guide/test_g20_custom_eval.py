"""G20 (模型评估 / 自定义评估脚本): the guide's own evaluation loop on PushT, as written.

It reads the env's own keys (``obs["agent_pos"]``, ``obs["pixels"]``) and hands the policy the image
as a uint8 CHW tensor; the policy must treat it exactly as the same image in [0, 1].
"""

import pytest
from tests.guide._guideb_fixtures import act_checkpoint, in_tmp_dir  # noqa: F401

from lerobot.policies.act.modeling_act import ACTPolicy as _ACTPolicy


@pytest.mark.slow
def test_g20_custom_eval(in_tmp_dir, capsys):  # noqa: F811
    # --- prelude: names the guide uses without importing ---
    import torch

    # --- the block ---
    from lerobot.common.policies.act.modeling_act import ACTPolicy
    from lerobot.envs import make_env
    import numpy as np

    # 1. 加载模型和环境
    # SUBSTITUTION: a local checkpoint folder (made by this project) for the Hub id "lerobot/act_pusht"
    policy = ACTPolicy.from_pretrained(act_checkpoint("pusht"))
    policy.eval()
    policy.to("cpu")  # SUBSTITUTION: "cpu" for "cuda"

    # SUBSTITUTION: smaller size: episodes end after 6 steps (episode_length=6) instead of 300
    env = make_env("pusht", render_mode="rgb_array", episode_length=6)

    # 2. 评估函数
    def evaluate_policy(policy, env, n_episodes=10):
        success_count = 0
        episode_rewards = []

        for episode in range(n_episodes):
            obs, info = env.reset()
            episode_reward = 0
            done = False

            while not done:
                # 准备观察
                observation = {
                    "observation.state": torch.tensor(obs["agent_pos"]).unsqueeze(0).to("cpu"),  # SUBSTITUTION: "cpu" for "cuda"
                    "observation.images.top": torch.tensor(obs["pixels"]).permute(2, 0, 1).unsqueeze(0).to("cpu"),  # SUBSTITUTION: "cpu" for "cuda"
                }

                # 推理
                with torch.no_grad():
                    action = policy.select_action(observation)["action"][0].cpu().numpy()

                # 执行
                obs, reward, terminated, truncated, info = env.step(action)
                done = terminated or truncated
                episode_reward += reward

            episode_rewards.append(episode_reward)
            if info.get("is_success", False):
                success_count += 1

            print(f"Episode {episode+1}: Reward={episode_reward:.2f}, Success={info.get('is_success', False)}")

        return {
            "success_rate": success_count / n_episodes,
            "mean_reward": np.mean(episode_rewards),
            "std_reward": np.std(episode_rewards),
        }

    # 3. 运行评估
    results = evaluate_policy(policy, env, n_episodes=2)  # SUBSTITUTION: smaller size, 2 episodes for 50
    print(f"\n评估结果:")  # noqa: F541
    print(f"成功率: {results['success_rate']:.2%}")
    print(f"平均奖励: {results['mean_reward']:.2f} ± {results['std_reward']:.2f}")

    # --- checks ---
    out = capsys.readouterr().out
    assert out.count("Episode ") == 2 and "成功率" in out
    assert 0.0 <= results["success_rate"] <= 1.0 and np.isfinite(results["mean_reward"])
    # The uint8 CHW frame the block builds acts exactly as the same frame in [0, 1].
    obs, _ = env.reset(seed=0)
    state = torch.tensor(obs["agent_pos"]).unsqueeze(0)
    image = torch.tensor(obs["pixels"]).permute(2, 0, 1).unsqueeze(0)
    assert image.dtype == torch.uint8
    fresh = _ACTPolicy.from_pretrained(act_checkpoint("pusht"))
    as_bytes = fresh.predict_action_chunk({"observation.state": state, "observation.images.top": image})
    as_unit = fresh.predict_action_chunk(
        {"observation.state": state, "observation.images.top": image / 255.0}
    )
    torch.testing.assert_close(as_bytes, as_unit, rtol=0, atol=0)
    env.close()
